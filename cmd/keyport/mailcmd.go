package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"

	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/mail"
	"github.com/keyport/keyport/templates"
)

// productName is what mail calls Keyport.
const productName = "Keyport"

// newMailSender builds the sender for the [mail] table; mail must be on.
func newMailSender(cfg *config.Config) (*mail.Sender, error) {
	m := cfg.Mail
	return mail.New(mail.Options{
		Host: m.Host, Port: m.Port, TLS: m.TLS,
		Username: m.Username, Password: m.Password,
		From: m.From, CAFile: m.CAFile, HELO: m.HELO,
		Timeout:       m.Timeout.Duration,
		MessageIDHost: issuerHost(cfg.Issuer),
	})
}

// mailTemplates parses the mail templates shipped in the binary.
func mailTemplates() (*mail.Templates, error) {
	sub, err := fs.Sub(templates.FS, "mail")
	if err != nil {
		return nil, err
	}
	return mail.ParseTemplates(sub)
}

func issuerHost(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// mailTest sends the test message with the configured settings. It opens
// no database, so it works while serve runs.
func (c *cli) mailTest(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("mail test")
	to := fs.String("to", "", "the address to send the test message to (required)")
	lang := fs.String("lang", "en", "the language of the message: en or de")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *to == "" {
		return usageError{"mail test: --to ADDR is required"}
	}
	cfg, err := c.loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if !cfg.Mail.Enabled() {
		return errors.New("mail is off: set host and from in the [mail] table of the configuration (see the mail section of config.toml)")
	}
	sender, err := newMailSender(cfg)
	if err != nil {
		return err
	}
	tm, err := mailTemplates()
	if err != nil {
		return err
	}
	msg, err := tm.Render("test", *lang, mail.Common{Product: productName, Host: issuerHost(cfg.Issuer)})
	if err != nil {
		return err
	}
	msg.To = *to
	if err := sender.Send(ctx, msg); err != nil {
		return fmt.Errorf("the test message was not sent: %w", err)
	}
	fmt.Fprintf(c.stdout, "sent a test message to %s through %s (tls %s); the server accepted it\n", *to, sender.Addr(), cfg.Mail.TLS)
	return nil
}
