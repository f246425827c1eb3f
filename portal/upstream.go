package portal

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/storage"
)

// Sign-in through an upstream OpenID Connect provider. The state, nonce
// and PKCE verifier of the attempt live in the signed cookie, so the answer
// is accepted only in the browser that started it, once, within ten minutes.
func (s *Server) registerUpstreamRoutes(t *routeTable) {
	t.add(levelSignIn, "GET", "/login/upstream/callback", s.upstreamCallback)
	t.add(levelSignIn, "POST", "/login/upstream/{id}", s.upstreamStart)
}

const (
	keyUpState    = "up_state"
	keyUpNonce    = "up_nonce"
	keyUpVerifier = "up_verifier"
	keyUpSource   = "up_src"
	keyUpRequest  = "up_req"
	keyUpReturn   = "up_ret"
	keyUpAt       = "up_at"
	upstreamTTL   = 10 * time.Minute
)

type upstreamButton struct{ ID, Label string }

func (s *Server) upstreamButtons() []upstreamButton {
	var out []upstreamButton
	for _, p := range s.acct.Directories.UpstreamProviders() {
		if s.acct.Directories.DirectoryDisabled(p.ID()) {
			continue
		}
		out = append(out, upstreamButton{ID: p.ID(), Label: p.ButtonLabel()})
	}
	return out
}

var errUpstreamGone = account.Errorf(account.Invalid, "This sign-in attempt has expired or was started in another browser. Please start again.")

func (s *Server) upstreamStart(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	src := s.acct.Directories.UpstreamProvider(mux.Vars(r)["id"])
	if src == nil {
		return account.Errorf(account.NotFound, "There is no such sign-in provider.")
	}
	authRequestID := r.PostFormValue("authRequestID")
	if authRequestID != "" {
		if _, err := s.loadFlow(r, authRequestID); err != nil {
			return err
		}
	}
	state, nonce, verifier := account.NewSecret(), account.NewSecret(), account.NewSecret()+account.NewSecret()
	to, err := src.AuthURL(r.Context(), state, nonce, verifier)
	if err != nil {
		return account.UpstreamError(src, err)
	}
	c := s.web.Cookie(r)
	c.Values[keyUpState], c.Values[keyUpNonce], c.Values[keyUpVerifier] = state, nonce, verifier
	c.Values[keyUpSource], c.Values[keyUpRequest], c.Values[keyUpReturn] = src.ID(), authRequestID, safeReturn(r.PostFormValue("return_to"))
	c.Values[keyUpAt] = s.now().Unix()
	if err := s.web.Save(w, r); err != nil {
		return err
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

func (s *Server) upstreamCallback(w http.ResponseWriter, r *http.Request) error {
	c := s.web.Cookie(r)
	state, _ := c.Values[keyUpState].(string)
	nonce, _ := c.Values[keyUpNonce].(string)
	verifier, _ := c.Values[keyUpVerifier].(string)
	srcID, _ := c.Values[keyUpSource].(string)
	authRequestID, _ := c.Values[keyUpRequest].(string)
	returnTo, _ := c.Values[keyUpReturn].(string)
	at, _ := c.Values[keyUpAt].(int64)
	// One answer per attempt: forget the attempt whatever happens next.
	for _, k := range []string{keyUpState, keyUpNonce, keyUpVerifier, keyUpSource, keyUpRequest, keyUpReturn, keyUpAt} {
		delete(c.Values, k)
	}
	if err := s.web.Save(w, r); err != nil {
		return err
	}
	q := r.URL.Query()
	if state == "" || s.now().Sub(time.Unix(at, 0)) > upstreamTTL || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
		return errUpstreamGone
	}
	src := s.acct.Directories.UpstreamProvider(srcID)
	if src == nil {
		return errUpstreamGone
	}
	if e := q.Get("error"); e != "" {
		return account.Errorf(account.Unauthorized, "%s did not sign you in (%s).", src.Name(), e)
	}
	ident, err := src.Exchange(r.Context(), q.Get("code"), verifier, nonce)
	if err != nil {
		// An upstream that cannot be reached is logged by the source, at
		// WARN and once per outage; only a refusal is this person's.
		if !errors.Is(err, directory.ErrUnavailable) {
			s.log.InfoContext(r.Context(), "upstream sign-in refused", "source", src.ID(), "err", err)
		}
		return account.UpstreamError(src, err)
	}
	u, err := s.acct.Directories.SignInUpstream(r.Context(), src, ident, clientIP(r), r.UserAgent())
	if err != nil {
		return err
	}
	// "fed" and the upstream's own methods; never "pwd" of its own, since
	// Keyport saw no password.
	amr := account.UpstreamSessionAMR(ident, src.Capabilities().SecondFactor)
	// The upstream is the first step, like a password: someone with a
	// second factor here (which require_2fa made them enrol) shows it, as
	// on the password path. The upstream's own "mfa" does not count: amr is
	// whatever the upstream chooses to say; handles_second_factor is how an
	// administrator tells Keyport to trust the upstream's second factors,
	// and then offers its users none of its own.
	var a storage.AuthRequest
	if authRequestID != "" {
		if a, err = s.loadFlow(r, authRequestID); err != nil {
			return err
		}
	}
	p, err := s.flow.FirstStepPassed(r.Context(), account.FirstStep{
		Request: a, ReturnTo: returnTo, User: u, AMR: amr,
		MayOweSecondFactor: true, Visitor: s.visitor(r), DeviceProof: s.deviceProof(r),
	})
	if err != nil {
		return err
	}
	return s.progress(w, r, p, false)
}
