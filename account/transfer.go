package account

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyport/keyport/storage"
)

// Export and import of users as JSON Lines, one user per line, so admins
// move accounts between Keyport instances or migrate them from Auth0,
// Keycloak, Authelia or Dex without resetting passwords: the password hash
// travels in PHC form and is upgraded to argon2id at the user's next
// sign-in (VerifyPassword).
//
// What does not travel: TOTP secrets (sealed with this instance's key, and
// the key stays here), passkeys (bound to this instance's origin, the
// relying party the authenticator signed for), recovery codes, trusted
// devices, app passwords and API tokens (secrets of this instance, which
// the users can make again), sessions and tokens, the avatar, and the
// sign-in history with its counters (last sign-in, last IP, count). An
// imported user with a second factor enrols it again.

// ExportedUser is one line of an export, and of an import file.
type ExportedUser struct {
	ID            string             `json:"id,omitempty"` // the OIDC "sub": keep it, and apps keep their users
	Username      string             `json:"username"`
	Email         string             `json:"email,omitempty"`
	EmailVerified bool               `json:"email_verified,omitempty"`
	Name          string             `json:"name,omitempty"`
	GivenName     string             `json:"given_name,omitempty"`
	FamilyName    string             `json:"family_name,omitempty"`
	Nickname      string             `json:"nickname,omitempty"`
	Locale        string             `json:"locale,omitempty"`
	Zoneinfo      string             `json:"zoneinfo,omitempty"`
	PhoneNumber   string             `json:"phone_number,omitempty"`
	PhoneVerified bool               `json:"phone_verified,omitempty"`
	RecoveryEmail string             `json:"recovery_email,omitempty"`
	Theme         string             `json:"theme,omitempty"`
	CustomData    map[string]string  `json:"custom_data,omitempty"`
	Groups        []string           `json:"groups,omitempty"`
	Roles         []string           `json:"roles,omitempty"`
	AppMetadata   map[string]string  `json:"app_metadata,omitempty"`
	Admin         bool               `json:"admin,omitempty"`
	Blocked       bool               `json:"blocked,omitempty"`
	System        bool               `json:"system,omitempty"` // an account for programs: API tokens only
	Source        string             `json:"source,omitempty"` // the directory the account comes from; "" is local
	Identities    []storage.Identity `json:"identities,omitempty"`
	// AllowedNetworks limits where the account may sign in from.
	AllowedNetworks []string  `json:"allowed_networks,omitempty"`
	CreatedAt       time.Time `json:"created_at,omitzero"`
	UpdatedAt       time.Time `json:"updated_at,omitzero"`
	// PasswordHash is a PHC string (ParsePasswordHash lists the formats).
	PasswordHash      string    `json:"password_hash,omitempty"`
	PasswordChangedAt time.Time `json:"password_changed_at,omitzero"`
}

// ExportedUserOf is u as an export line has it.
func ExportedUserOf(u storage.User) ExportedUser {
	return ExportedUser{
		ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
		Name: u.Name, GivenName: u.GivenName, FamilyName: u.FamilyName, Nickname: u.Nickname,
		Locale: u.Locale, Zoneinfo: u.Zoneinfo, PhoneNumber: u.PhoneNumber, PhoneVerified: u.PhoneVerified,
		RecoveryEmail: u.RecoveryEmail, Theme: u.Theme, CustomData: u.CustomData,
		Groups: u.Groups, Roles: u.Roles, AppMetadata: u.AppMetadata,
		Admin: u.Admin, Blocked: u.Blocked, System: u.System, Source: u.Source, Identities: u.Identities,
		AllowedNetworks: u.AllowedNetworks, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
		PasswordHash: u.PasswordHash, PasswordChangedAt: u.PasswordChangedAt,
	}
}

// exportPage is how many users the export holds at once.
const exportPage = 500

// userPager reads users a page at a time (storage/bolt's ListUsersPage).
// When the paged user search of the admin console is in storage.Users,
// ExportUsers pages through it instead and this goes.
type userPager interface {
	ListUsersPage(ctx context.Context, after string, limit int) ([]storage.User, error)
}

// ExportUsers writes every user to w as JSON Lines (ExportedUser), in
// username order, and returns how many. It holds one page of users at a
// time. The export holds password hashes, so a read-only credential may
// not make one (Keycloak, too, needs manage-realm for a partial export
// with users); the audit log records it.
func (s *UserService) ExportUsers(ctx context.Context, actor Actor, w io.Writer) (int, error) {
	if err := actor.mayAdminister(ctx, s.store); err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n := 0
	err := s.eachUserPage(ctx, func(users []storage.User) error {
		for _, u := range users {
			if err := enc.Encode(ExportedUserOf(u)); err != nil {
				return fmt.Errorf("write user %q: %w", u.ID, err)
			}
			n++
		}
		return nil
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return n, fmt.Errorf("export users: %w", err)
	}
	s.audit(ctx, actor, storage.AuditEvent{Type: "users.exported", Changes: []storage.AuditChange{{Field: "users", After: strconv.Itoa(n)}}})
	return n, nil
}

// eachUserPage calls fn with the users a page at a time, or, on a store
// that cannot page, all at once.
func (s *UserService) eachUserPage(ctx context.Context, fn func([]storage.User) error) error {
	p, ok := s.store.(userPager)
	if !ok {
		users, err := s.store.ListUsers(ctx)
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		return fn(users)
	}
	for after := ""; ; {
		page, err := p.ListUsersPage(ctx, after, exportPage)
		if err != nil {
			return err
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
		}
		if len(page) < exportPage {
			return nil
		}
		after = strings.ToLower(page[len(page)-1].Username)
	}
}

// The import's limits. A line holds one user: 64 KiB is far more than
// any real one (all fields full is about 20 KiB). 100,000 lines is the
// scale Keyport is measured at; a larger directory is imported in several
// files (split -l 100000). 128 MiB bounds what one file holds in memory,
// since nothing is written until every line has been checked.
const (
	MaxImportLineBytes = 64 << 10
	MaxImportLines     = 100_000
	MaxImportBytes     = 128 << 20
)

// ImportOptions changes how ImportUsers works.
type ImportOptions struct {
	// DryRun checks every line and writes nothing.
	DryRun bool
}

// ImportProblem is one thing wrong with one line of an import file.
type ImportProblem struct {
	Line    int    // 1-based line number in the file
	Field   string // the JSON key at fault, or "" for the line as a whole
	Message string
}

func (p ImportProblem) String() string {
	if p.Field == "" {
		return fmt.Sprintf("line %d: %s", p.Line, p.Message)
	}
	return fmt.Sprintf("line %d: %s: %s", p.Line, p.Field, p.Message)
}

// ImportReport is what ImportUsers found and did.
type ImportReport struct {
	Users    int // users in the file (lines that are not blank)
	Created  int // users stored: 0 on a dry run or when any line is bad
	DryRun   bool
	Problems []ImportProblem // every problem of every bad line, in line order
}

// ImportUsers reads users as JSON Lines (ExportedUser) and creates them,
// all or nothing: every line is checked first (its JSON, unknown keys,
// the account rules, duplicates within the file and with existing users,
// the password hash's format and work bounds), and the report lists every
// problem with its line number and field. If any line is bad, nothing is
// written and the error is Invalid; otherwise all users are created in
// one storage transaction. Password hashes are stored as they are: no
// hashing happens. An import writes one audit event with the count.
func (s *UserService) ImportUsers(ctx context.Context, actor Actor, r io.Reader, opts ImportOptions) (ImportReport, error) {
	rep := ImportReport{DryRun: opts.DryRun}
	if err := actor.mayAdminister(ctx, s.store); err != nil {
		return rep, err
	}
	chk := &importCheck{s: s, now: s.now(), seen: map[string]int{}}
	var users []storage.User
	err := readImportLines(r, func(line int, raw []byte, lineErr string) error {
		rep.Users++
		if lineErr != "" {
			chk.problem(line, "", "%s", lineErr)
			return nil
		}
		u, ok, err := chk.line(ctx, line, raw)
		if ok {
			users = append(users, u)
		}
		return err
	})
	rep.Problems = chk.problems
	if err != nil {
		return rep, err
	}
	if len(rep.Problems) > 0 {
		return rep, Errorf(Invalid, "%d of %d lines have problems; nothing was imported.", badLines(rep.Problems), rep.Users)
	}
	if opts.DryRun || len(users) == 0 {
		return rep, nil
	}
	if err := s.store.CreateUsers(ctx, users); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return rep, &Error{Code: Conflict, Message: "A user of the file was created meanwhile by someone else; nothing was imported. Check the file again.", Err: err}
		}
		return rep, fmt.Errorf("import %d users: %w", len(users), err)
	}
	rep.Created = len(users)
	s.audit(ctx, actor, storage.AuditEvent{Type: "users.imported", Changes: []storage.AuditChange{{Field: "users", After: strconv.Itoa(rep.Created)}}})
	return rep, nil
}

func badLines(ps []ImportProblem) int {
	n, last := 0, 0
	for _, p := range ps {
		if p.Line != last {
			n, last = n+1, p.Line
		}
	}
	return n
}

// readImportLines calls fn for every line that is not blank, with its
// number; a line longer than MaxImportLineBytes is passed as lineErr
// (and skipped, so the lines after it are still checked). Past
// MaxImportLines or MaxImportBytes it stops with an Invalid error: the
// file must be split.
func readImportLines(r io.Reader, fn func(line int, raw []byte, lineErr string) error) error {
	br := bufio.NewReaderSize(io.LimitReader(r, MaxImportBytes+1), MaxImportLineBytes+1)
	total, users := 0, 0
	for line := 1; ; line++ {
		raw, err := br.ReadSlice('\n')
		total += len(raw)
		long := false
		for errors.Is(err, bufio.ErrBufferFull) {
			long = true
			var more []byte
			more, err = br.ReadSlice('\n')
			total += len(more)
		}
		if total > MaxImportBytes {
			return Errorf(Invalid, "The file is larger than %d MiB; split it into several files.", MaxImportBytes>>20)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read import line %d: %w", line, err)
		}
		if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 || long {
			if users++; users > MaxImportLines {
				return Errorf(Invalid, "The file has more than %d users; split it into several files.", MaxImportLines)
			}
			lineErr := ""
			if long {
				lineErr = fmt.Sprintf("longer than %d KiB", MaxImportLineBytes>>10)
			}
			if ferr := fn(line, trimmed, lineErr); ferr != nil {
				return ferr
			}
		}
		if err != nil { // io.EOF
			return nil
		}
	}
}

// importCheck checks the lines of one file against the rules, each other
// and the store.
type importCheck struct {
	s        *UserService
	now      time.Time
	seen     map[string]int // "id:"+ID, "name:"+lower-case username or email, "ident:"+connection+NUL+ID → line
	problems []ImportProblem
}

func (c *importCheck) problem(line int, field, format string, args ...any) {
	c.problems = append(c.problems, ImportProblem{Line: line, Field: field, Message: fmt.Sprintf(format, args...)})
}

var (
	// importIDPattern: IDs from other systems ("auth0|5f7c…", Keycloak's
	// UUIDs) are kept as the OIDC subject; they appear in URLs and logs,
	// so they are plain ASCII. Keyport's own (NewID, base64url) may start
	// with - or _, and an export must import again; a leading dot could
	// make "." or "..", which no URL path can name.
	importIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._:@|+-]{0,127}$`)
	sourcePattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// Bounds of the list and map fields of an imported user.
const (
	maxImportListItems  = 100 // groups, roles
	maxImportMetadata   = 50  // app_metadata entries
	maxImportMetaValue  = 2000
	maxImportIdentities = 20
)

// line checks one line and builds its user; ok is false when the line has
// a problem. A non-nil error is the store failing, which ends the import.
func (c *importCheck) line(ctx context.Context, line int, raw []byte) (storage.User, bool, error) {
	before := len(c.problems)
	var e ExportedUser
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		field, msg := jsonProblem(err)
		c.problem(line, field, "%s", msg)
		return storage.User{}, false, nil
	}
	if dec.More() {
		c.problem(line, "", "more than one JSON value on the line")
		return storage.User{}, false, nil
	}
	u := c.user(line, e)
	if len(c.problems) > before {
		return storage.User{}, false, nil
	}
	if err := c.unique(ctx, line, u); err != nil {
		return storage.User{}, false, err
	}
	return u, len(c.problems) == before, nil
}

// jsonProblem names the key and says what is wrong with a line that does
// not decode.
func jsonProblem(err error) (field, msg string) {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return typeErr.Field, fmt.Sprintf("must be a JSON %s, not %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return "", fmt.Sprintf("not valid JSON (at byte %d): %v", syntaxErr.Offset, err)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return name, "unknown field"
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "", "not valid JSON: it ends too early"
	}
	return "", "not valid JSON: " + err.Error()
}

func jsonKind(k string) string {
	switch k {
	case "slice":
		return "array"
	case "map", "struct":
		return "object"
	case "bool":
		return "boolean (true or false)"
	}
	return k
}

// user applies the account rules to one decoded line and builds the
// record to store.
func (c *importCheck) user(line int, e ExportedUser) storage.User {
	bad := func(field, format string, args ...any) { c.problem(line, field, format, args...) }
	u := storage.User{
		ID: e.ID, Username: strings.TrimSpace(e.Username), Email: strings.TrimSpace(e.Email), EmailVerified: e.EmailVerified,
		Groups: e.Groups, Roles: e.Roles, AppMetadata: e.AppMetadata, CustomData: e.CustomData,
		Admin: e.Admin, Blocked: e.Blocked, System: e.System, Source: e.Source, Identities: e.Identities,
		CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(), PasswordChangedAt: e.PasswordChangedAt.UTC(),
		PasswordHash: e.PasswordHash,
	}
	if e.System && (e.PasswordHash != "" || e.Source != "") {
		bad("system", "a system account has no password and no directory")
	}
	if u.ID == "" {
		u.ID = NewID()
	} else if !importIDPattern.MatchString(u.ID) {
		bad("id", "must be 1 to 128 letters, digits or . _ : @ | + -, not starting with a dot")
	}
	if e.Source != "" && !sourcePattern.MatchString(e.Source) {
		bad("source", "must be a directory ID: 1 to 64 letters, digits, dots, dashes or underscores")
	}
	// Local accounts follow the rules of `keyport user create`; a
	// directory's accounts keep the names the directory gave them, as
	// they do when they sign in for the first time.
	switch {
	case e.Source == "" && !usernamePattern.MatchString(u.Username):
		bad("username", "must be 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit")
	case u.Username == "" || len(u.Username) > 256 || !cleanText(u.Username):
		bad("username", "must be 1 to 256 bytes of text without control characters")
	}
	if u.Email != "" || e.Source == "" {
		if err := validateEmail(u.Email); err != nil {
			bad("email", "%s", ErrorMessage(err))
		}
	}
	// The profile fields, by the rules of the profile page.
	for _, f := range []struct{ key, value string }{
		{"name", e.Name}, {"given_name", e.GivenName}, {"family_name", e.FamilyName}, {"nickname", e.Nickname},
		{"locale", e.Locale}, {"zoneinfo", e.Zoneinfo}, {"phone_number", e.PhoneNumber},
		{"recovery_email", e.RecoveryEmail}, {"theme", e.Theme},
	} {
		a, _ := AttributeByKey(f.key)
		if err := a.set(&u, f.value); err != nil {
			bad(f.key, "%s", ErrorMessage(err))
		}
	}
	u.PhoneVerified = e.PhoneVerified && u.PhoneNumber != ""
	if e.CustomData != nil {
		if err := ValidateCustomData(e.CustomData); err != nil {
			bad("custom_data", "%s", ErrorMessage(err))
		}
	}
	if msg := checkNames(e.Groups); msg != "" {
		bad("groups", "%s", msg)
	}
	if msg := checkNames(e.Roles); msg != "" {
		bad("roles", "%s", msg)
	}
	if msg := checkAppMetadata(e.AppMetadata); msg != "" {
		bad("app_metadata", "%s", msg)
	}
	if msg := checkIdentities(e.Identities); msg != "" {
		bad("identities", "%s", msg)
	}
	if len(e.AllowedNetworks) > 0 {
		nets, err := ParseNetworks(strings.Join(e.AllowedNetworks, ","))
		if err != nil {
			bad("allowed_networks", "%s", ErrorMessage(err))
		}
		u.AllowedNetworks = nets
	}
	if e.PasswordHash != "" {
		if e.Source != "" {
			bad("password_hash", "an account from a directory signs in with the directory's password; leave the hash out")
		} else if h, err := ParsePasswordHash(e.PasswordHash); err != nil {
			bad("password_hash", "%v", strings.TrimPrefix(err.Error(), "parse "))
		} else if msg := h.importWorkError(); msg != "" {
			bad("password_hash", "%s", msg)
		}
	}
	for _, f := range []struct {
		key string
		t   time.Time
	}{{"created_at", e.CreatedAt}, {"updated_at", e.UpdatedAt}, {"password_changed_at", e.PasswordChangedAt}} {
		if !f.t.IsZero() && (f.t.Year() < 1970 || f.t.After(c.now.Add(24*time.Hour))) {
			bad(f.key, "must be a time between 1970 and now")
		}
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = c.now
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	rememberVerifiedEmail(&u)
	return u
}

// cleanText: valid UTF-8 without control characters.
func cleanText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// checkNames checks a list of group or role names.
func checkNames(list []string) string {
	if len(list) > maxImportListItems {
		return fmt.Sprintf("at most %d entries", maxImportListItems)
	}
	for i, n := range list {
		if n == "" || utf8.RuneCountInString(n) > maxNameRunes || !cleanText(n) {
			return fmt.Sprintf("entry %d must be 1 to %d characters without control characters", i+1, maxNameRunes)
		}
	}
	return ""
}

// checkAppMetadata: keys as custom data's, values of plain text.
func checkAppMetadata(m map[string]string) string {
	if len(m) > maxImportMetadata {
		return fmt.Sprintf("at most %d entries", maxImportMetadata)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !customKeyPattern.MatchString(k) {
			return fmt.Sprintf("key %q must start with a letter and use only letters, digits, dots, dashes and underscores (at most 40)", k)
		}
		if v := m[k]; utf8.RuneCountInString(v) > maxImportMetaValue || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return fmt.Sprintf("the value of %q must be text of at most %d characters", k, maxImportMetaValue)
		}
	}
	return ""
}

func checkIdentities(ids []storage.Identity) string {
	if len(ids) > maxImportIdentities {
		return fmt.Sprintf("at most %d identities", maxImportIdentities)
	}
	for i, id := range ids {
		for _, v := range []string{id.Connection, id.UserID, id.Provider} {
			if v == "" || len(v) > 256 || !cleanText(v) {
				return fmt.Sprintf("identity %d needs connection, provider and user_id, each 1 to 256 bytes of text", i+1)
			}
		}
	}
	return ""
}

// unique checks that u's ID, names and identities are on no earlier line
// and belong to no existing user. CreateUsers checks the store again, in
// the transaction that writes; here the problems get their lines.
func (c *importCheck) unique(ctx context.Context, line int, u storage.User) error {
	type claim struct {
		key, field, value string
		lookup            func() error // finds the existing user that has it
	}
	byLogin := func(v string) func() error {
		return func() error { _, err := c.s.store.GetUserByLogin(ctx, v); return err }
	}
	claims := []claim{
		{"id:" + u.ID, "id", u.ID, func() error { _, err := c.s.store.GetUser(ctx, u.ID); return err }},
		{"name:" + strings.ToLower(u.Username), "username", u.Username, byLogin(u.Username)},
	}
	// Usernames and emails share one namespace; one's own email may be
	// one's username.
	if u.Email != "" && !strings.EqualFold(u.Email, u.Username) {
		claims = append(claims, claim{"name:" + strings.ToLower(u.Email), "email", u.Email, byLogin(u.Email)})
	}
	for _, id := range u.Identities {
		claims = append(claims, claim{"ident:" + id.Connection + "\x00" + id.UserID, "identities", id.Connection + "/" + id.UserID,
			func() error { _, err := c.s.store.GetUserByIdentity(ctx, id.Connection, id.UserID); return err }})
	}
	for _, cl := range claims {
		if first, dup := c.seen[cl.key]; dup {
			if first != line {
				c.problem(line, cl.field, "%q is also on line %d", cl.value, first)
			}
			continue
		}
		c.seen[cl.key] = line
		switch err := cl.lookup(); {
		case err == nil:
			c.problem(line, cl.field, "%q belongs to an existing user", cl.value)
		case !errors.Is(err, storage.ErrNotFound):
			return fmt.Errorf("check %s %q: %w", cl.field, cl.value, err)
		}
	}
	return nil
}
