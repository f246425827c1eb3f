package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// verifyStandard is a receiver's check of the Standard Webhooks headers,
// written from the specification (standard-webhooks/spec, "Verifying
// webhooks"), not from our signing code: the key is the base64 after
// "whsec_"; the signed content is "msg_id.timestamp.payload"; the header
// is a space-separated list of "v1,<base64 HMAC-SHA256>"; the timestamp
// must be within the tolerance of now.
func verifyStandard(secret string, h http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return errors.New("the secret is not whsec_ and base64")
	}
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing headers")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return errors.New("bad timestamp")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := mac.Sum(nil)
	for _, s := range strings.Split(sigs, " ") {
		version, sig, _ := strings.Cut(s, ",")
		got, err := base64.StdEncoding.DecodeString(sig)
		if version == "v1" && err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no signature matches")
}

// verifyKeyport checks Keyport-Signature as the README documents it:
// "t=<unix>,v1=<hex HMAC-SHA256 of t.body>", keyed with the secret as
// written.
func verifyKeyport(secret string, h http.Header, body []byte) error {
	var ts, sig string
	for _, p := range strings.Split(h.Get("Keyport-Signature"), ",") {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	got, err := hex.DecodeString(sig)
	if ts == "" || err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("Keyport-Signature does not match")
	}
	return nil
}

// The specification's own example: our header for its secret, message
// and timestamp is the signature it gives.
func TestSignStandardMatchesTheSpecExample(t *testing.T) {
	got := SignStandard(StandardKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// A receiver on loopback verifies each signature on its own: the
// Standard Webhooks headers with the secret in its whsec_ form, and
// Keyport-Signature with the secret as written. A secret of the form
// Keyport made before (URL-safe, unpadded) verifies in its standardSecret
// form. A changed body fails both.
func TestCallsCarryBothSignatures(t *testing.T) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	type got struct {
		h    http.Header
		body []byte
	}
	calls := make(chan got, 1)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		calls <- got{r.Header.Clone(), b}
	}))
	defer recv.Close()
	g, _ := NewGuard([]string{"127.0.0.0/8"})
	body := []byte(`{"id":"ev_1","type":"user.created"}`)
	for name, secret := range map[string]string{
		"standard": "whsec_" + base64.StdEncoding.EncodeToString(key),
		"older":    "whsec_" + base64.RawURLEncoding.EncodeToString(key),
	} {
		now := time.Now()
		if _, err := Post(t.Context(), g.Client(), Call{URL: recv.URL, Secret: secret, ID: "ev_1", Body: body, At: now}); err != nil {
			t.Fatal(err)
		}
		c := <-calls
		if err := verifyStandard(standardSecret(secret), c.h, c.body, now); err != nil {
			t.Errorf("%s: Standard Webhooks: %v (%v)", name, err, c.h)
		}
		if err := verifyKeyport(secret, c.h, c.body); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if name == "standard" && standardSecret(secret) != secret {
			t.Errorf("a standard secret is rewritten: %s", standardSecret(secret))
		}
		tampered := append([]byte(nil), c.body...)
		tampered[2] = 'X'
		if verifyStandard(standardSecret(secret), c.h, tampered, now) == nil || verifyKeyport(secret, c.h, tampered) == nil {
			t.Errorf("%s: a changed body verifies", name)
		}
		if c.h.Get("webhook-id") != "ev_1" {
			t.Errorf("%s: webhook-id %q", name, c.h.Get("webhook-id"))
		}
	}
}

// standardSecret is secret as a Standard Webhooks library accepts it
// ("whsec_" and the standard base64 of StandardKey), what the README tells
// the owner of an older secret to write: the secrets Keyport makes now are
// this already.
func standardSecret(secret string) string {
	return SecretPrefix + base64.StdEncoding.EncodeToString(StandardKey(secret))
}
