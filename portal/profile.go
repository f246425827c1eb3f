package portal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/web"
)

func (s *Server) registerProfileRoutes(t *routeTable) {
	t.add(levelSignedIn, "GET", "/profile", s.profilePage)
	t.add(levelSignedIn, "POST", "/profile", s.profileSubmit)
	t.add(levelSignedIn, "POST", "/profile/avatar", uploadForm{"avatar", account.MaxAvatarBytes, s.avatarUpload})
	t.add(levelSignedIn, "POST", "/profile/avatar/remove", s.avatarRemove)
	t.add(levelSignedIn, "POST", "/profile/custom-data", s.customDataSubmit)
	t.add(levelSignedIn, "POST", "/profile/verify-email", s.verifyEmailRequest)
	// Public: the link is the credential; the page asks before it spends it.
	t.add(levelPublic, "GET", account.VerifyEmailPath, s.verifyEmailPage)
	t.add(levelPublic, "POST", account.VerifyEmailPath, s.verifyEmailSubmit)
	// Public: apps show it through the picture claim.
	t.add(levelPublic, "GET HEAD", "/avatar/{id}", s.avatar)
}

// avatarBodyLimit is the request size allowed on the avatar upload: the
// image plus room for the multipart framing and the other fields.
const avatarBodyLimit = account.MaxAvatarBytes + 64<<10

// profileField is one row of the profile page, built from the policy table.
type profileField struct {
	Key, Label, Value, Kind string
	Editable                bool
	LockReason              string
	Source                  string
	Audience                string
	Error                   string
}

type customEntry struct{ Key, Value string }

type profileData struct {
	web.Base
	Fields       []profileField
	AvatarURL    string
	HasAvatar    bool
	AvatarLocked string // reason, when it is
	AvatarError  string
	// Where the avatar comes from and who sees it, as for the other fields.
	AvatarSource, AvatarAudience string
	Custom                       []customEntry
	CustomLocked                 string
	CustomError                  string
	Notice, Error                string
	// CanVerifyEmail: the address is not verified, and mail can prove it.
	CanVerifyEmail bool
	Languages      []string
	Timezones      []string
}

var commonTimezones = []string{
	"UTC", "Europe/London", "Europe/Berlin", "Europe/Paris", "Europe/Madrid", "Europe/Rome", "Europe/Vienna",
	"Europe/Zurich", "Europe/Amsterdam", "Europe/Stockholm", "Europe/Warsaw", "Europe/Athens", "Europe/Istanbul",
	"America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Sao_Paulo",
	"Asia/Tokyo", "Asia/Shanghai", "Asia/Kolkata", "Asia/Singapore", "Australia/Sydney", "Africa/Johannesburg",
}

// audience says which apps see an attribute, in the page's language.
func audience(lang string, a account.Attribute) string {
	switch {
	case a.Claim == "sub":
		return web.Translate(lang, "Every app you sign in to")
	case a.Claim != "":
		return web.Translate(lang, "Apps granted the %s scope (ID token and userinfo)", a.Scope)
	}
	return web.Translate(lang, "Only you and administrators")
}

func (s *Server) profileView(r *http.Request, u storage.User) *profileData {
	d := &profileData{Base: s.web.Base(r, &u, "Your profile"), Languages: web.LanguageOptions(), Timezones: commonTimezones,
		CanVerifyEmail: s.acct.Mail.CanVerify(u)}
	d.Nav = "profile"
	for _, a := range account.Attributes {
		if a.Key == "picture" {
			// Its own form, with the same facts beside it.
			d.AvatarSource = web.Translate(d.Lang, s.acct.Users.Source(u, a.Key))
			d.AvatarAudience = audience(d.Lang, a)
			continue
		}
		locked, reason := s.acct.Users.FieldLock(u, a.Key)
		f := profileField{
			Key: a.Key, Label: web.Translate(d.Lang, a.Label), Value: s.acct.Users.FieldValue(u, a.Key), Kind: string(a.Kind),
			Editable: !locked, Audience: audience(d.Lang, a),
			Source: web.Translate(d.Lang, s.acct.Users.Source(u, a.Key)),
		}
		if locked {
			f.LockReason = web.Translate(d.Lang, reason)
			if name, ok := strings.CutPrefix(reason, "Managed by "); ok {
				f.LockReason = web.Translate(d.Lang, "Managed by %s.", strings.TrimSuffix(name, "."))
			}
		}
		if a.Kind == account.KindTime && f.Value != "" {
			f.Value = formatTime(f.Value, u.Zoneinfo)
		}
		d.Fields = append(d.Fields, f)
	}
	d.AvatarURL = account.AvatarPath(u)
	d.HasAvatar = !u.AvatarAt.IsZero()
	if locked, reason := s.acct.Users.FieldLock(u, "picture"); locked {
		d.AvatarLocked = web.Translate(d.Lang, reason)
	}
	for _, k := range slices.Sorted(maps.Keys(u.CustomData)) {
		d.Custom = append(d.Custom, customEntry{Key: k, Value: u.CustomData[k]})
	}
	if s.acct.Policy().ProfilesLocked {
		d.CustomLocked = web.Translate(d.Lang, account.ReasonAdminLock)
	}
	return d
}

// formatTime shows an RFC 3339 time in the user's time zone.
func formatTime(rfc3339, tz string) string {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		return rfc3339
	}
	if loc, err := time.LoadLocation(tz); err == nil && tz != "" {
		t = t.In(loc)
	}
	return t.Format("2006-01-02 15:04 MST")
}

func (s *Server) profilePage(w http.ResponseWriter, r *http.Request, m me) error {
	d := s.profileView(r, m.User)
	switch r.URL.Query().Get("saved") {
	case "1":
		d.Notice = web.Translate(d.Lang, "Your profile was saved.")
	case "email":
		d.Notice = web.Translate(d.Lang, "Your profile was saved. We sent a link to your new email address: the address changes when you open it.")
	case "recovery":
		d.Notice = web.Translate(d.Lang, "Your profile was saved. We sent a link to your new recovery email address: it takes effect when you open it.")
	case "verify":
		d.Notice = web.Translate(d.Lang, "We sent a confirmation link to your email address. It works for 24 hours.")
	}
	s.web.Render(w, r, http.StatusOK, "profile", d)
	return nil
}

// profileSubmit saves the profile form. Every posted field that names a
// profile attribute is a change request, so a crafted post of a locked field
// is refused like any other, and nothing is saved.
func (s *Server) profileSubmit(w http.ResponseWriter, r *http.Request, m me) error {
	changes := map[string]string{}
	for key, vals := range r.PostForm {
		if _, ok := account.AttributeByKey(key); ok && len(vals) > 0 {
			changes[key] = vals[0]
		}
	}
	_, pending, err := s.acct.Mail.UpdateProfile(r.Context(), m.User.ID, changes, web.PickLanguage(r, m.User.Locale))
	if err == nil {
		switch {
		case pending != "" && strings.EqualFold(pending, strings.TrimSpace(changes["email"])):
			http.Redirect(w, r, "/profile?saved=email", http.StatusSeeOther)
			return nil
		case pending != "":
			http.Redirect(w, r, "/profile?saved=recovery", http.StatusSeeOther)
			return nil
		}
		http.Redirect(w, r, "/profile?saved=1", http.StatusSeeOther)
		return nil
	}
	code := account.ErrorCode(err)
	if code != account.Invalid && code != account.Forbidden && code != account.Conflict && code != account.RateLimited {
		return err
	}
	// Show the form again with what was typed and the message at its field.
	d := s.profileView(r, m.User)
	field, msg := account.ErrorField(err), errorText(d.Lang, err)
	for i := range d.Fields {
		f := &d.Fields[i]
		if v, ok := changes[f.Key]; ok && f.Editable {
			f.Value = v
		}
		if f.Key == field {
			f.Error = msg
		}
	}
	d.Error = msg
	s.web.Render(w, r, statusFor(code), "profile", d)
	return nil
}

// upload is a form with one file as withUserUpload read it: its text
// fields went to r.PostForm, its file is here.
type upload struct {
	File    []byte
	HasFile bool
	// TooLarge: the file or the whole request was over its limit, and
	// reading stopped there.
	TooLarge bool
	// FieldTooLong: a text field was over maxUploadField, and reading
	// stopped there.
	FieldTooLong bool
}

// uploadHandler is a signed-in handler of a form with one file.
type uploadHandler func(w http.ResponseWriter, r *http.Request, m me, up upload) error

// maxUploadField bounds each text field of an upload form (the CSRF token).
const maxUploadField = 4 << 10

// withUserUpload is withUser for a form with one file: the body is read
// part by part (readUpload) instead of by ParseMultipartForm, so a file
// over maxFile stops the reading right there (the rest of the body is
// never read) and the handler still runs, to show its own page with the
// message, like any other refused upload. The body is read once someone
// is signed in and before the CSRF check; the form's text fields come
// before the file in a browser's post, so the check sees the token either
// way, and nothing is stored before it passed.
func (s *Server) withUserUpload(field string, maxFile int64, h uploadHandler) http.Handler {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		var up upload
		read := func(r *http.Request) (err error) {
			up, err = readUpload(r, field, maxFile)
			return err
		}
		return s.signedIn(w, r, read, func(w http.ResponseWriter, r *http.Request, m me) error {
			return h(w, r, m, up)
		})
	})
}

var errFormUnreadable = account.Errorf(account.Invalid, "The form could not be read.")

// readUpload reads the body of a post to an upload form. A
// multipart/form-data body is read part by part: text fields into
// r.PostForm and r.Form (so nothing parses the body again), the file named
// field up to maxFile bytes. Over a limit (the file's, a field's, or the
// request's from ServeHTTP) it stops reading and says which. Any other
// body is read as a plain form: it has no file, which the handler says
// like any missing file once the CSRF check has passed.
func readUpload(r *http.Request, field string, maxFile int64) (upload, error) {
	ctype := r.Header.Get("Content-Type")
	mediaType, params, err := mime.ParseMediaType(ctype)
	switch {
	case ctype == "" || (err == nil && mediaType != "multipart/form-data"):
		return upload{}, parseForm(r)
	case err != nil || params["boundary"] == "":
		return upload{}, errFormUnreadable
	}
	values := url.Values{}
	r.PostForm, r.MultipartForm = values, &multipart.Form{Value: values}
	defer func() {
		// As ParseForm does: the body's values first, then the query's.
		r.Form = r.URL.Query()
		for k, v := range values {
			r.Form[k] = slices.Concat(v, r.Form[k])
		}
	}()
	body := &limitWatch{r: r.Body}
	mr := multipart.NewReader(body, params["boundary"])
	var up upload
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return up, nil
		}
		if err != nil {
			if body.hit {
				up.TooLarge = true
				return up, nil
			}
			return up, errFormUnreadable
		}
		limit := int64(maxUploadField)
		isFile := part.FormName() == field
		if isFile {
			limit = maxFile
		}
		data, err := io.ReadAll(io.LimitReader(part, limit+1))
		switch {
		case err != nil && body.hit, isFile && int64(len(data)) > limit:
			up.TooLarge = true
			return up, nil
		case err != nil:
			return up, errFormUnreadable
		case int64(len(data)) > limit:
			up.FieldTooLong = true
			return up, nil
		case isFile:
			up.File, up.HasFile = data, part.FileName() != "" || len(data) > 0
		case part.FileName() == "":
			values.Add(part.FormName(), string(data))
		}
	}
}

// limitWatch reads a request body and notes when it runs into the
// request's size limit (http.MaxBytesReader). The multipart reader does
// not always pass that error on as it is: the limit hit inside a part's
// headers comes back as a malformed header (a textproto.ProtocolError).
// Once the limit was hit, any error reading the body means "too large".
type limitWatch struct {
	r   io.Reader
	hit bool
}

func (l *limitWatch) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		l.hit = true
	}
	return n, err
}

func (s *Server) avatarUpload(w http.ResponseWriter, r *http.Request, m me, up upload) error {
	if up.TooLarge {
		return s.avatarFailed(w, r, m, account.FieldErrorf("picture", "The image is too large: at most 1 MiB."))
	}
	if up.FieldTooLong {
		// Not the image: another field of the form, which a browser's
		// form never makes this long.
		return s.avatarFailed(w, r, m, account.FieldErrorf("picture", "A field of the form is too long. Reload the page and try again."))
	}
	if !up.HasFile {
		return s.avatarFailed(w, r, m, account.FieldErrorf("picture", "Choose an image file to upload."))
	}
	if err := s.acct.Users.SetAvatar(r.Context(), m.User.ID, up.File); err != nil {
		return s.avatarFailed(w, r, m, err)
	}
	http.Redirect(w, r, "/profile?saved=1", http.StatusSeeOther)
	return nil
}

func (s *Server) avatarFailed(w http.ResponseWriter, r *http.Request, m me, err error) error {
	code := account.ErrorCode(err)
	if code != account.Invalid && code != account.Forbidden {
		return err
	}
	d := s.profileView(r, m.User)
	d.AvatarError = errorText(d.Lang, err)
	d.Error = d.AvatarError
	s.web.Render(w, r, statusFor(code), "profile", d)
	return nil
}

func (s *Server) avatarRemove(w http.ResponseWriter, r *http.Request, m me) error {
	if err := s.acct.Users.RemoveAvatar(r.Context(), m.User.ID); err != nil {
		return s.avatarFailed(w, r, m, err)
	}
	http.Redirect(w, r, "/profile?saved=1", http.StatusSeeOther)
	return nil
}

// customDataSubmit replaces the user's custom data with the posted rows
// (ckey/cvalue pairs; a row with an empty key is dropped).
func (s *Server) customDataSubmit(w http.ResponseWriter, r *http.Request, m me) error {
	keys, vals := r.PostForm["ckey"], r.PostForm["cvalue"]
	data := map[string]string{}
	var err error
	for i, k := range keys {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		if _, dup := data[k]; dup {
			err = account.FieldErrorf("custom_data", "Each key may appear only once.")
			break
		}
		v := ""
		if i < len(vals) {
			v = strings.TrimSpace(vals[i])
		}
		data[k] = v
	}
	if err == nil {
		_, err = s.acct.Users.SetCustomData(r.Context(), m.User.ID, data)
	}
	if err == nil {
		http.Redirect(w, r, "/profile?saved=1", http.StatusSeeOther)
		return nil
	}
	code := account.ErrorCode(err)
	if code != account.Invalid && code != account.Forbidden {
		return err
	}
	d := s.profileView(r, m.User)
	d.Custom = nil
	for i, k := range keys {
		e := customEntry{Key: k}
		if i < len(vals) {
			e.Value = vals[i]
		}
		if k != "" || e.Value != "" {
			d.Custom = append(d.Custom, e)
		}
	}
	d.CustomError = errorText(d.Lang, err)
	d.Error = d.CustomError
	s.web.Render(w, r, statusFor(code), "profile", d)
	return nil
}

// avatar serves a user's picture to anyone (apps show it through the
// picture claim); the URL carries a version, so caches may keep it a while.
func (s *Server) avatar(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	ctype, data, mod, err := s.acct.Users.Avatar(r.Context(), id)
	if err != nil {
		if account.ErrorCode(err) == account.NotFound {
			http.Error(w, "no such avatar", http.StatusNotFound)
			return nil
		}
		return err
	}
	sum := sha256.Sum256(data)
	h := w.Header()
	// Set before ServeContent, which then neither sniffs the type nor
	// invents a validator: it answers If-None-Match and If-Modified-Since
	// with 304 and HEAD without a body.
	h.Set("Content-Type", ctype)
	h.Set("ETag", `"`+hex.EncodeToString(sum[:12])+`"`)
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	// An SVG opened directly must not run anything or load anything.
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	http.ServeContent(w, r, "", mod, bytes.NewReader(data))
	return nil
}
