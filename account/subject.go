package account

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/keyport/keyport/storage"
)

// Subject types of an app (OpenID Connect Core 1.0 §8): public gives every
// app the person's user ID as sub; pairwise gives every sector its own.
const (
	SubjectPublic   = "public"
	SubjectPairwise = "pairwise"
)

// Subjects decides the sub an app knows a person by (Subject), and reads
// one back (UserOf). It is the only place that does: every sub Keyport
// sends (ID tokens, userinfo, introspection, access tokens, logout
// tokens, token exchange) comes from Subject, every sub it is sent back
// (id_token_hint, the claims parameter's sub) goes through UserOf.
//
// A pairwise sub is the user ID sealed for the app's sector with a
// deterministic authenticated encryption in the SIV manner: the nonce is
// HMAC-SHA256(macKey, sector, user ID) cut to 12 bytes, and the user ID is
// sealed with AES-256-GCM under that nonce with the sector as additional
// data; sub = base64url(nonce || sealed). So one person has one sub in a
// sector, another in every other sector, nobody without the key can
// compute or read one, and Keyport reads a sub back without a lookup
// table (a logout by id_token_hint when nobody is signed in in the
// browser must find the person). The keys come from the sealing key
// (stable across restarts, replicas and backup/restore).
type Subjects struct {
	aead   cipher.AEAD
	macKey []byte
}

// SubjectKeyLen is the length of the key NewSubjects takes: 32 bytes for
// AES-256-GCM, 32 for the HMAC.
const SubjectKeyLen = 64

// NewSubjects makes the subject rules from a key of SubjectKeyLen bytes.
func NewSubjects(key []byte) (*Subjects, error) {
	if len(key) != SubjectKeyLen {
		return nil, fmt.Errorf("pairwise subject key: %d bytes, want %d", len(key), SubjectKeyLen)
	}
	block, err := aes.NewCipher(key[:32])
	if err != nil {
		return nil, fmt.Errorf("pairwise subject key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("pairwise subject key: %w", err)
	}
	return &Subjects{aead: aead, macKey: append([]byte(nil), key[32:]...)}, nil
}

// Pairwise tells whether c gets pairwise subjects.
func Pairwise(c storage.Client) bool { return c.SubjectType == SubjectPairwise }

// Subject is the sub app c knows user userID by.
func (s *Subjects) Subject(c storage.Client, userID string) string {
	if !Pairwise(c) || userID == "" {
		return userID
	}
	sector := sectorOrApp(c)
	return s.seal(s.nonce(sector, userID), userID, sector)
}

// seal is userID sealed under nonce with additional data ad, the nonce in
// front, in base64url: a pairwise sub, or an avatar ID.
func (s *Subjects) seal(nonce []byte, userID, ad string) string {
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(userID), []byte(ad)))
}

// open reads back what seal made with additional data ad: the user ID
// and the nonce it came with, ok false for anything seal did not make.
func (s *Subjects) open(enc, ad string) (userID string, nonce []byte, ok bool) {
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	n := s.aead.NonceSize()
	if err != nil || len(raw) < n+s.aead.Overhead() {
		return "", nil, false
	}
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(ad))
	if err != nil || len(plain) == 0 {
		return "", nil, false
	}
	return string(plain), raw[:n], true
}

// UserOf is the user ID behind sub as app c knows it, and whether sub is
// one Keyport gave c's sector (for a public app, any sub is the user ID).
func (s *Subjects) UserOf(c storage.Client, sub string) (string, bool) {
	if !Pairwise(c) {
		return sub, true
	}
	sector := sectorOrApp(c)
	userID, nonce, ok := s.open(sub, sector)
	// The nonce is a function of what it seals: one made any other way
	// is no sub of ours.
	if !ok || subtle.ConstantTimeCompare(nonce, s.nonce(sector, userID)) != 1 {
		return "", false
	}
	return userID, true
}

func (s *Subjects) nonce(sector, userID string) []byte {
	m := hmac.New(sha256.New, s.macKey)
	m.Write(sectorPair(sector, userID))
	return m.Sum(nil)[:s.aead.NonceSize()]
}

// sectorPair is what a value derived per sector is derived from: the
// sector and id (a user's, a session's), each behind its length, so that
// no two pairs are the same bytes. The pairwise subs' nonces (nonce) and
// the pairwise sids (ClientSID) both hash it, each under its own key or
// label.
func sectorPair(sector, id string) []byte {
	return fmt.Appendf(nil, "%d:%s%d:%s", len(sector), sector, len(id), id)
}

// sectorOrApp is c's sector; a stored app always has one (checkSubject),
// and one that somehow has none is a sector of its own, never another's.
func sectorOrApp(c storage.Client) string {
	if sector, err := Sector(c); err == nil {
		return sector
	}
	return "app:" + c.ID
}

// Sector is the sector identifier of app c (OpenID Connect Core 1.0
// §8.1): the host of its sector_identifier_uri, else the host of its
// redirect URIs, which must then all have the same one.
func Sector(c storage.Client) (string, error) {
	if c.SectorIdentifierURI != "" {
		u, err := url.Parse(c.SectorIdentifierURI)
		if err != nil || u.Host == "" {
			return "", errors.New("the sector_identifier_uri has no host")
		}
		return strings.ToLower(u.Hostname()), nil
	}
	sector := ""
	for _, raw := range c.RedirectURIs {
		u, err := url.Parse(raw)
		if err != nil {
			return "", fmt.Errorf("redirect URI %q: %w", raw, err)
		}
		host := strings.ToLower(u.Hostname())
		switch {
		case host == "":
			// A native app's private-use scheme (com.example.app:/cb)
			// names no host: its scheme is what identifies it.
			host = strings.ToLower(u.Scheme) + ":"
		case loopbackHost(host):
			// A loopback address (RFC 8252 §7.3) is every native app's
			// host, no one's sector: the app is a sector of its own
			// (apps of one vendor share one by a sector_identifier_uri).
			host = "app:" + c.ID
		}
		if sector != "" && host != sector {
			return "", errors.New("the redirect URIs have several hosts")
		}
		sector = host
	}
	if sector == "" {
		return "", errors.New("the app has no redirect URI")
	}
	return sector, nil
}

// loopbackHost tells whether host is a loopback name or address.
func loopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// MaxSectorIdentifierURILength bounds sector_identifier_uri.
const MaxSectorIdentifierURILength = 2048

// checkSubject checks an app's subject_type and sector_identifier_uri
// (all but the document at the URI, which CheckSector fetches).
func checkSubject(c *storage.Client) *Error {
	switch c.SubjectType {
	case "", SubjectPublic:
		c.SubjectType = ""
	case SubjectPairwise:
	default:
		return FieldErrorf("subject_type", "subject_type must be public or pairwise.")
	}
	if c.SectorIdentifierURI != "" && c.SubjectType != SubjectPairwise {
		return FieldErrorf("sector_identifier_uri", "A sector_identifier_uri is only for pairwise apps.")
	}
	if c.SectorIdentifierURI == "" {
		if c.SubjectType == SubjectPairwise {
			if _, err := Sector(*c); err != nil {
				if len(c.RedirectURIs) == 0 {
					// A device or machine app: no redirect URI names its
					// sector.
					return FieldErrorf("sector_identifier_uri", "A pairwise app without redirect URIs needs a sector_identifier_uri to name its sector.")
				}
				return FieldErrorf("sector_identifier_uri", "A pairwise app whose redirect URIs have several hosts needs a sector_identifier_uri (OpenID Connect Core 1.0 §8.1).")
			}
		}
		return nil
	}
	if len(c.SectorIdentifierURI) > MaxSectorIdentifierURILength {
		return FieldErrorf("sector_identifier_uri", "The sector_identifier_uri must be at most %d characters.", MaxSectorIdentifierURILength)
	}
	u, err := url.Parse(c.SectorIdentifierURI)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" || strings.ContainsAny(c.SectorIdentifierURI, "# \t\r\n") {
		return FieldErrorf("sector_identifier_uri", "The sector_identifier_uri must be an https URL without user name or fragment.")
	}
	return nil
}

// SectorCheck fetches the JSON array at an app's sector_identifier_uri and
// checks that it lists every redirect URI (OpenID Connect Dynamic Client
// Registration 1.0 §5). A refusal of the document itself is a
// *SectorDocumentError; any other error is the fetch's, and says what the
// network said.
type SectorCheck func(ctx context.Context, uri string, redirectURIs []string) error

// SectorDocumentError is a SectorCheck's refusal of the document it
// fetched: it does not list one of the app's redirect URIs (Missing), or
// it is not a JSON array of URIs (Missing ""). The app that registers
// itself is told which: the document is its own.
type SectorDocumentError struct {
	URI     string
	Missing string
}

func (e *SectorDocumentError) Error() string {
	if e.Missing == "" {
		return fmt.Sprintf("%s: not a JSON array of redirect URIs", e.URI)
	}
	return fmt.Sprintf("%s does not list the redirect URI %s", e.URI, e.Missing)
}

// SetSectorCheck makes the apps registered or changed here have their
// sector_identifier_uri checked with check.
func (s *ClientService) SetSectorCheck(check SectorCheck) { s.sectorCheck = check }

// checkSectorDocument runs the sector check of c, an administrator's app,
// when it is pairwise with a sector_identifier_uri; nil is a pass. A
// fetch that failed says why: the administrator runs the server and its
// network, and needs the reason to fix the URI or [client_auth]
// jwks_allow_networks.
func (s *ClientService) checkSectorDocument(ctx context.Context, c storage.Client) *Error {
	refusal, fetchErr := s.sectorDocument(ctx, c)
	if fetchErr != nil {
		return FieldErrorf("sector_identifier_uri", "The sector_identifier_uri was refused: %s", fetchErr.Error())
	}
	return refusal
}

// checkRegisteredSectorDocument is checkSectorDocument for an app that
// registers or updates itself (RFC 7591, RFC 7592). It is not told why a
// fetch failed, which only the log says: what the SSRF guard, the
// resolver or the network said ("10.1.2.3 is a private address", "lookup
// intra.corp on 10.0.0.53:53: no such host", "connection refused") would
// make registration a probe of the server's network and its internal
// names and addresses.
func (s *ClientService) checkRegisteredSectorDocument(ctx context.Context, c storage.Client) *Error {
	refusal, fetchErr := s.sectorDocument(ctx, c)
	if fetchErr != nil {
		s.log.WarnContext(ctx, "sector_identifier_uri of a self-registering app could not be fetched",
			"client_id", c.ID, "client_name", c.Name, "uri", c.SectorIdentifierURI, "err", fetchErr)
		return FieldErrorf("sector_identifier_uri", "The sector_identifier_uri could not be fetched: it must answer a GET over https with a JSON array of the redirect URIs.")
	}
	return refusal
}

// sectorDocument runs the sector check of c when it is pairwise with a
// sector_identifier_uri: both nil for a pass; refusal, an answer anyone
// may be given, for a document that says the wrong thing; fetchErr, for a
// document that could not be fetched, what went wrong, which the caller
// shows or logs.
func (s *ClientService) sectorDocument(ctx context.Context, c storage.Client) (refusal *Error, fetchErr error) {
	if !Pairwise(c) || c.SectorIdentifierURI == "" {
		return nil, nil
	}
	if s.sectorCheck == nil {
		return FieldErrorf("sector_identifier_uri", "sector_identifier_uri cannot be checked here."), nil
	}
	err := s.sectorCheck(ctx, c.SectorIdentifierURI, c.RedirectURIs)
	var doc *SectorDocumentError
	switch {
	case err == nil:
		return nil, nil
	case !errors.As(err, &doc):
		return nil, err
	case doc.Missing == "":
		return FieldErrorf("sector_identifier_uri", "The sector_identifier_uri is not a JSON array of redirect URIs."), nil
	}
	return FieldErrorf("sector_identifier_uri", "The sector_identifier_uri does not list the redirect URI %s.", doc.Missing), nil
}

// sectorInputsEqual tells whether a and b agree on everything the sector
// check reads, so a check of one holds for the other.
func sectorInputsEqual(a, b storage.Client) bool {
	return a.SubjectType == b.SubjectType && a.SectorIdentifierURI == b.SectorIdentifierURI && slices.Equal(a.RedirectURIs, b.RedirectURIs)
}

// sectorCheckStale tells whether an edit from c to next needs a sector
// document that the check made before its transaction (checked, nil for
// none) did not read as next has it: something changed meanwhile.
func sectorCheckStale(checked *storage.Client, c, next storage.Client) bool {
	return sectorDocumentNeeded(c, next) && (checked == nil || !sectorInputsEqual(*checked, next))
}

// sectorDocumentNeeded tells whether an edit from c to next must fetch
// next's sector document: it is pairwise with a sector_identifier_uri, and
// something the check reads changed.
func sectorDocumentNeeded(c, next storage.Client) bool {
	return Pairwise(next) && next.SectorIdentifierURI != "" && !sectorInputsEqual(c, next)
}

// checkSectorOfPatch checks the sector document app id will have after p,
// before the edit's transaction (which must not wait on the network). It
// returns the app as checked, or nil when no check was needed; the edit
// then makes sure nothing the check read changed meanwhile.
func (s *ClientService) checkSectorOfPatch(ctx context.Context, id string, p ClientPatch) (*storage.Client, error) {
	if p.SubjectType == nil && p.SectorIdentifierURI == nil && p.RedirectURIs == nil {
		return nil, nil
	}
	c, err := s.store.GetClient(ctx, id)
	if err != nil {
		return nil, nil // the edit itself says why (not found, static)
	}
	next := p.apply(c)
	if normalizeClient(&next, true, &c) != nil || s.checkFeatures(next, &c) != nil || !sectorDocumentNeeded(c, next) {
		// The edit refuses it (pairwise subjects off, say: no fetch, and
		// the refusal names subject_type), or no document to check.
		return nil, nil
	}
	if err := s.checkSectorDocument(ctx, next); err != nil {
		return nil, err
	}
	return &next, nil
}

// pairwiseAvatarPrefix marks an avatar ID sealed for a pairwise sub
// (PairwiseAvatarPath). An imported user ID may start so too (importIDPattern):
// one that does not open is taken as a user ID.
const pairwiseAvatarPrefix = "p."

// PairwiseAvatarPath is where an app that knows u by the pairwise sub
// subject finds u's picture: the user ID sealed under a nonce of that sub
// (another domain of the HMAC than the subs' nonces, other additional
// data), so one per sector as the sub is, never the user ID, which in the
// picture claim would give every sector one identifier to join people by
// (OpenID Connect Core 1.0 §8.1). It follows the sub, whichever app's a
// token carries (an exchanged one's is its target's), with no read.
func (s *Subjects) PairwiseAvatarPath(subject string, u storage.User) string {
	m := hmac.New(sha256.New, s.macKey)
	// The user ID too, so two plaintexts never share a nonce, whatever
	// the caller pairs; and the picture's version (AvatarPath's ?v=), so
	// the ID changes with each upload and caches refetch, without the
	// upload's second, which is nearly one person's alone, in clear.
	var version int64
	if !u.AvatarAt.IsZero() {
		version = u.AvatarAt.Unix()
	}
	fmt.Fprintf(m, "avatar:%d:%s%d:%s", len(subject), subject, version, u.ID)
	return "/avatar/" + pairwiseAvatarPrefix + s.seal(m.Sum(nil)[:s.aead.NonceSize()], u.ID, "avatar")
}

// avatarUserOf is the user ID of an avatar ID PairwiseAvatarPath
// sealed, and whether id is one.
func (s *Subjects) avatarUserOf(id string) (string, bool) {
	enc, ok := strings.CutPrefix(id, pairwiseAvatarPrefix)
	if !ok || len(enc) > 1024 {
		return "", false
	}
	userID, _, ok := s.open(enc, "avatar")
	return userID, ok
}

// SetSubjects lets Avatar read the avatar IDs pairwise apps are given
// (Subjects.PairwiseAvatarPath).
func (s *UserService) SetSubjects(subjects *Subjects) { s.subjects = subjects }
