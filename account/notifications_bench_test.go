package account_test

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/mail"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/templates"
)

// BenchmarkBrowserSignInRecord measures the write of a browser sign-in
// (FinishSignIn: user fields, history, session, audit event and its
// reactions; no password hashing) for a user with a full recent history:
// without mail (no notification reactor), with mail from a known device
// (the reactor's one bounded history read), and from a new device each
// time (the history read, the user read and a rendered, sealed mail).
func BenchmarkBrowserSignInRecord(b *testing.B) {
	for _, c := range []struct {
		name      string
		mail, new bool
	}{{"mail_off", false, false}, {"known_device", true, false}, {"new_device", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			svc, db := account.NewTestService(b, account.TestServiceOptions{Policy: account.Policy{
				SessionLifetime: time.Hour, Issuer: "https://id.example.com",
				Notify: account.Notify{NewDevice: true, PasswordChanged: true, SecondFactor: true, Credentials: true, TokenExpiry: true, Blocked: true},
			}})
			if c.mail {
				sub, err := fs.Sub(templates.FS, "mail")
				if err != nil {
					b.Fatal(err)
				}
				tm, err := mail.ParseTemplates(sub)
				if err != nil {
					b.Fatal(err)
				}
				svc.EnableMail(tm)
			}
			ctx := context.Background()
			u, err := svc.Users.CreateUser(ctx, account.NewUser{Username: "alice", Email: "alice@example.com", Password: "a long passphrase 1"})
			if err != nil {
				b.Fatal(err)
			}
			const ua = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
			// A full history: the known device among other browsers.
			for i := range 60 {
				other := ua
				if i%2 == 0 {
					other = "Other/" + string(rune('a'+i%26))
				}
				if _, _, _, err := svc.SignIn.FinishSignIn(ctx, u, "", account.Credentials{IP: "203.0.113.7", UserAgent: other}, nil); err != nil {
					b.Fatal(err)
				}
			}
			queued := func() int {
				msgs, _, err := db.ListOutbox(ctx, storage.OutboxQuery{Limit: storage.MaxOutboxLimit})
				if err != nil {
					b.Fatal(err)
				}
				return len(msgs)
			}
			before := queued()
			n := 0
			for b.Loop() {
				agent := ua
				if c.new {
					n++
					agent = ua + " n" + time.Duration(n).String()
				}
				if _, _, _, err := svc.SignIn.FinishSignIn(ctx, u, "", account.Credentials{IP: "203.0.113.9", UserAgent: agent}, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if added := queued() - before; c.new && added == 0 || !c.new && added != 0 {
				b.Fatalf("%d mails queued", added)
			}
		})
	}
}

// BenchmarkNewDeviceReactor measures the notification reactor alone on
// one successful browser sign-in event: a known device (one bounded read
// of the history) and a new one (plus the user read, rendering and
// sealing the mail).
func BenchmarkNewDeviceReactor(b *testing.B) {
	svc, _ := account.NewTestService(b, account.TestServiceOptions{Policy: account.Policy{
		SessionLifetime: time.Hour, Issuer: "https://id.example.com", Notify: account.Notify{NewDevice: true},
	}})
	sub, err := fs.Sub(templates.FS, "mail")
	if err != nil {
		b.Fatal(err)
	}
	tm, err := mail.ParseTemplates(sub)
	if err != nil {
		b.Fatal(err)
	}
	svc.EnableMail(tm)
	ctx := context.Background()
	u, err := svc.Users.CreateUser(ctx, account.NewUser{Username: "alice", Email: "alice@example.com", Password: "a long passphrase 1"})
	if err != nil {
		b.Fatal(err)
	}
	const ua = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	for i := range 100 {
		other := "Other/" + string(rune('a'+i%26))
		if i == 0 {
			other = ua // the oldest of the 50 read
		}
		if _, _, _, err := svc.SignIn.FinishSignIn(ctx, u, "", account.Credentials{IP: "203.0.113.7", UserAgent: other}, nil); err != nil {
			b.Fatal(err)
		}
	}
	if _, _, _, err := svc.SignIn.FinishSignIn(ctx, u, "", account.Credentials{IP: "203.0.113.7", UserAgent: ua}, nil); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name, ua string
		want     int
	}{{"known_device", ua, 0}, {"new_device", "Chrome/140", 1}} {
		b.Run(c.name, func(b *testing.B) {
			e := storage.AuditEvent{ID: "e1", Time: time.Now(), Type: account.EventSignInSucceeded, ActorKind: account.ActorUser, ActorID: u.ID, TargetUserID: u.ID, IP: "203.0.113.9", UserAgent: c.ua, Method: "pwd"}
			for b.Loop() {
				if got := svc.ReactionsForTest(ctx, e); len(got) != c.want {
					b.Fatalf("%d messages, want %d", len(got), c.want)
				}
			}
		})
	}
}
