package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/daemontest"
	"github.com/keyport/keyport/internal/haproxytest"
	"github.com/keyport/keyport/internal/pgtest"
	"github.com/keyport/keyport/seal"
)

// replicaSet is two Keyport replicas on one PostgreSQL database behind a
// real HAProxy (round robin, no stickiness): a in this process (the test
// reaches its Main), b a child process (the test can SIGKILL it).
type replicaSet struct {
	lb   *haproxytest.Server
	a    *testServer
	b    *childServer
	dsn  string
	key  string // the sealing key file both use
	addr string // the balancer's address; the issuer is http://addr
}

func startReplicas(t *testing.T) *replicaSet {
	t.Helper()
	r := &replicaSet{dsn: pgtest.Database(t), key: filepath.Join(t.TempDir(), "secret.key"), addr: daemontest.FreeAddr(t)}
	if _, _, err := seal.LoadOrCreateKey(r.key, true); err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + r.addr
	lnA := listenLoopback(t)
	r.a = startServerWith(t, serverOptions{ln: lnA, issuer: issuer, mutate: func(c *config.Config) {
		c.Storage.Type, c.Storage.DSN, c.SecretKeyFile = config.StoragePostgres, r.dsn, r.key
		c.Tokens.RefreshReuseGrace = config.Duration{} // a reuse is a reuse at once, not a retry
	}})
	r.b = startChild(t, "", "[storage]\ntype = \"postgres\"\n[tokens]\nrefresh_reuse_grace = \"0s\"\n", "KEYPORT_ISSUER="+issuer, "KEYPORT_STORAGE_DSN="+r.dsn, "KEYPORT_SECRET_KEY_FILE="+r.key)
	r.lb = haproxytest.StartOn(t, r.addr, r.a.addr, r.b.Addr)
	return r
}

// via is an HTTP client whose every connection goes to replica addr,
// whatever the URL's host: to send one step of a flow to a chosen replica
// with the issuer's URLs.
func via(addr string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Two replicas behind a load balancer share every state a flow needs: a
// browser signs in at one replica and the app redeems the code at the
// other; a refresh token rotated at one is reused at the other and the
// family is revoked; a user blocked through one is refused at the other
// at once (users are read per request, never cached); a setting changed,
// or a client's secret rotated, at one is in force at the other within
// the change notice's delay.
func TestReplicasBehindALoadBalancer(t *testing.T) {
	r := startReplicas(t)
	ctx := context.Background()
	a := r.a
	a.createUser("alice", false)
	c := a.createClient(account.NewClient{ID: "app", Name: "App", RedirectURIs: []string{"http://127.0.0.1:9/callback/app"}, SkipConsent: true})
	c.oauth.Scopes = append(c.oauth.Scopes, "offline_access")

	// Sign in at a, redeem at b.
	br := newBrowser(t)
	br.client.Transport = via(a.addr).Transport
	code, verifier := c.signIn(br, "alice")
	atB := context.WithValue(ctx, oauth2.HTTPClient, via(r.b.Addr))
	tok, err := c.oauth.Exchange(atB, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("redeem at b a code issued at a: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := c.verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("the ID token b signed, checked with the balancer's JWKS: %v", err)
	}
	if idt.Issuer != "http://"+r.addr {
		t.Errorf("issuer %q", idt.Issuer)
	}

	// Rotate at a, reuse the old refresh token at b: refused, and the
	// family (the new token too) is revoked.
	atA := context.WithValue(ctx, oauth2.HTTPClient, via(a.addr))
	rotated, err := c.oauth.TokenSource(atA, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh at a: %v", err)
	}
	if _, err := c.oauth.TokenSource(atB, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("b accepted a refresh token a had rotated")
	}
	if _, err := c.oauth.TokenSource(atA, &oauth2.Token{RefreshToken: rotated.RefreshToken}).Token(); err == nil {
		t.Fatal("after the reuse at b, a still accepted the family's newest token")
	}

	// A client assertion used at a is a replay at b: the jti records
	// are in the shared database.
	jobKey := newRPKey(t, jose.ES256, "k1")
	a.createClient(account.NewClient{ID: "job", GrantTypes: []string{account.GrantClientCredentials},
		TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: jobKey.jwks(t)})
	once := assertion(t, jobKey.signing(), "job", "http://"+r.addr+"/oauth/token")
	for _, step := range []struct {
		at   string
		want int
	}{{a.addr, http.StatusOK}, {r.b.Addr, http.StatusUnauthorized}} {
		form := merge(url.Values{"grant_type": {"client_credentials"}}, assertionParams(once))
		req, _ := http.NewRequest(http.MethodPost, "http://"+r.addr+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if status, _, body := doJSON(t, via(step.at), req); status != step.want {
			t.Fatalf("client assertion at %s: %d %v, want %d", step.at, status, body, step.want)
		}
	}

	// Block at a; b refuses the next refresh at once.
	fresh := c.tokens("alice")
	alice, err := a.Main.Store.GetUserByLogin(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Main.Accounts.Admin.BlockUser(ctx, account.SystemActor, alice.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.oauth.TokenSource(atB, &oauth2.Token{RefreshToken: fresh.RefreshToken}).Token(); err == nil {
		t.Fatal("b refreshed the token of a user a had blocked")
	}

	// A setting changed at a is in force at b: b's tokens get the new
	// lifetime. (Change notices arrive within milliseconds; the bound,
	// should one be lost, is replica.DefaultFallback.)
	if err := a.Main.Accounts.Admin.UnblockUser(ctx, account.SystemActor, alice.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Main.Accounts.Admin.UpdateSettings(ctx, account.SystemActor, "", account.SettingsPatch{"access_token_lifetime": json.RawMessage(`"7m"`)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(40 * time.Second)
	for {
		code, verifier := c.signIn(newBrowser(t), "alice")
		tok, err := c.oauth.Exchange(atB, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if left := time.Until(tok.Expiry); left > 6*time.Minute && left <= 7*time.Minute {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b still issues tokens for %s after the setting changed at a", time.Until(tok.Expiry).Round(time.Second))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// An app given ES256 at a: a makes the ES256 key, and b signs the
	// app's ID tokens with that key once the client's change notice
	// arrived, whether or not the key's notice did, making none of its own.
	if _, _, err := a.Main.Accounts.Clients.UpdateClient(ctx, account.SystemActor, "app", "", account.ClientPatch{IDTokenSignedResponseAlg: ptr("ES256")}); err != nil {
		t.Fatal(err)
	}
	esKeys := func() []string {
		t.Helper()
		keys, err := a.Main.Store.ListSigningKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range keys {
			if k.Algorithm == "ES256" && k.RetiredAt.IsZero() {
				out = append(out, k.ID)
			}
		}
		return out
	}
	made := esKeys()
	if len(made) != 1 {
		t.Fatalf("active ES256 keys after the change at a: %v, want one", made)
	}
	esVerifier := c.provider.Verifier(&oidc.Config{ClientID: c.ID, SupportedSigningAlgs: []string{"ES256"}})
	deadline = time.Now().Add(10 * time.Second)
	for ; ; time.Sleep(20 * time.Millisecond) {
		code, verifier := c.signIn(newBrowser(t), "alice")
		tok, err := c.oauth.Exchange(atB, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := tok.Extra("id_token").(string)
		if alg, kid := jwtHeader(t, raw); alg == "ES256" {
			if kid != made[0] {
				t.Errorf("b signed the ES256 ID token with %q, want a's key %q", kid, made[0])
			}
			if _, err := esVerifier.Verify(ctx, raw); err != nil {
				t.Errorf("b's ES256 ID token, checked with the balancer's JWKS: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b still signs the app's ID tokens with RS256")
		}
	}
	if got := esKeys(); len(got) != 1 {
		t.Errorf("active ES256 keys after b signed: %v, want a's alone", got)
	}

	// A client's secret rotated at a stops working at b once the change
	// notice arrives, though b keeps the clients it has read in memory.
	warm, err := c.oauth.TokenSource(atB, &oauth2.Token{RefreshToken: c.tokens("alice").RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh at b before the rotation: %v", err)
	}
	if _, err := a.Main.Accounts.Clients.RotateSecret(ctx, account.SystemActor, "app", 0, false); err != nil {
		t.Fatal(err)
	}
	// Well below the 30 s an entry lives at most: only the notice can
	// make this pass.
	deadline = time.Now().Add(10 * time.Second)
	for rt := warm.RefreshToken; ; time.Sleep(20 * time.Millisecond) {
		next, err := c.oauth.TokenSource(atB, &oauth2.Token{RefreshToken: rt}).Token()
		var refused *oauth2.RetrieveError
		if errors.As(err, &refused) && refused.ErrorCode == "invalid_client" {
			break
		}
		if err != nil {
			t.Fatalf("refresh at b with the old secret: %v, want invalid_client", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("b still takes the secret a rotated away")
		}
		rt = next.RefreshToken
	}
}

// A replica killed under load (SIGKILL) loses no write it acknowledged,
// and sign-ins go on at the other.
func TestReplicaKilledUnderLoad(t *testing.T) {
	r := startReplicas(t)
	ctx := context.Background()
	rw, _, _ := adminTokens(t, r.a)
	c := r.a.createClient(account.NewClient{ID: "app", Name: "App", RedirectURIs: []string{"http://127.0.0.1:9/callback/app"}, SkipConsent: true})
	lb := &http.Client{Timeout: 10 * time.Second}
	create := func(name string) (string, error) {
		body, _ := json.Marshal(map[string]any{"username": name, "email": name + "@example.com", "invite": true})
		req, _ := http.NewRequest(http.MethodPost, "http://"+r.addr+"/api/v1/users", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+rw)
		req.Header.Set("Content-Type", "application/json")
		resp, err := lb.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return "", fmt.Errorf("status %d", resp.StatusCode)
		}
		var out struct {
			User struct {
				ID string `json:"id"`
			} `json:"user"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return "", err
		}
		return out.User.ID, nil
	}
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if id, err := create(fmt.Sprintf("load%d-%d", w, i)); err == nil {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		})
	}
	waitFor := func(n int) {
		for deadline := time.Now().Add(60 * time.Second); ; {
			mu.Lock()
			got := len(acked)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d writes acknowledged, want %d", got, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(20)
	r.b.kill()
	mu.Lock()
	atKill := len(acked)
	mu.Unlock()
	waitFor(atKill + 20) // writes go on at a
	close(stop)
	wg.Wait()
	for _, id := range acked {
		if _, err := r.a.Main.Store.GetUser(ctx, id); err != nil {
			t.Errorf("acknowledged user %s: %v", id, err)
		}
	}
	// Sign-ins go on through the balancer.
	r.a.createUser("carol", false)
	tok := c.tokens("carol")
	if _, err := c.verifier.Verify(ctx, tok.Extra("id_token").(string)); err != nil {
		t.Fatalf("sign-in after the kill: %v", err)
	}
}
