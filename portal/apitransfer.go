package portal

import (
	"mime"
	"net/http"
	"strconv"

	"github.com/keyport/keyport/account"
)

// Import and export of users as JSON Lines through the management API:
// the same account.UserService calls as `keyport user import|export`
// (which reach them through here), so both write the same audit events.
func (s *Server) registerAdminTransferAPI(at *routeTable) {
	at.addAPI(levelAdminAPI, "POST", "/users/import", s.apiImportUsers, apiOp{
		Summary: "Create users from JSON Lines (Content-Type application/x-ndjson; one user per line, password hashes in PHC form), all or nothing. " +
			"200 with the report when imported (or, with dry_run, when every line is good); 422 with every problem's line and field when any line is bad, and nothing is written",
		Query:    []apiParam{{"dry_run", "boolean", "check every line and write nothing"}},
		BodyType: ndjson, Response: importReportJSON{}, Unprocessable: importReportJSON{},
	})
	at.addAPI(levelAdminAPI, "GET", "/users/export", s.apiExportUsers, apiOp{Summary: "Every user as JSON Lines (application/x-ndjson) in username order, password hashes included (so read-only credentials may not)", ContentType: ndjson})
}

const (
	ndjson = "application/x-ndjson"
	// userImportPath gets a body limit of its own (Server.ServeHTTP): one
	// byte more than an import file may hold, so ImportUsers finds the
	// file too large and says so rather than the body ending mid-line.
	// Only an authenticated administrator's request is ever read.
	userImportPath      = "/api/v1/users/import"
	userImportBodyLimit = account.MaxImportBytes + 1
)

// importReportJSON is account.ImportReport as the API answers it.
type importReportJSON struct {
	Users    int                 `json:"users"`   // users in the file
	Created  int                 `json:"created"` // 0 on a dry run or when any line is bad
	DryRun   bool                `json:"dry_run"`
	Problems []importProblemJSON `json:"problems"`
	// Message says why nothing was imported (with a 422).
	Message string `json:"message,omitempty"`
}

type importProblemJSON struct {
	Line    int    `json:"line"`
	Field   string `json:"field,omitempty"` // the JSON key at fault; none for the line as a whole
	Message string `json:"message"`
}

func importReportView(rep account.ImportReport) importReportJSON {
	out := importReportJSON{Users: rep.Users, Created: rep.Created, DryRun: rep.DryRun, Problems: []importProblemJSON{}}
	for _, p := range rep.Problems {
		out.Problems = append(out.Problems, importProblemJSON{Line: p.Line, Field: p.Field, Message: p.Message})
	}
	return out
}

func (s *Server) apiImportUsers(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || (mt != ndjson && mt != "application/jsonl") {
		writeAPIError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Send the users as JSON Lines with Content-Type: "+ndjson+".", "")
		return nil
	}
	var opts account.ImportOptions
	if v := r.URL.Query().Get("dry_run"); v != "" {
		dry, err := strconv.ParseBool(v)
		if err != nil {
			return account.FieldErrorf("dry_run", "dry_run must be true or false.")
		}
		opts.DryRun = dry
	}
	rep, err := s.acct.Users.ImportUsers(r.Context(), a, r.Body, opts)
	if len(rep.Problems) > 0 {
		out := importReportView(rep)
		if err != nil {
			out.Message = errorText("en", err)
		}
		writeJSON(w, http.StatusUnprocessableEntity, out)
		return nil
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, importReportView(rep))
	return nil
}

func (s *Server) apiExportUsers(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	lw := &lazyStream{w: w, contentType: ndjson, filename: "keyport-users.jsonl"}
	_, err := s.acct.Users.ExportUsers(r.Context(), a, lw)
	if err != nil && !lw.started {
		return err // nothing sent yet: a proper error answer
	}
	if err != nil {
		// The status is sent; the log says why the stream is short.
		s.log.ErrorContext(r.Context(), "user export failed part-way", "err", err)
		return nil
	}
	lw.start() // an empty export is still a 200
	return nil
}

// lazyStream sends the status and headers of a stream at its first
// write, so an error before any byte (a refusal, a failing first read)
// can still be answered as an error.
type lazyStream struct {
	w                     http.ResponseWriter
	contentType, filename string
	started               bool
}

func (l *lazyStream) start() {
	if l.started {
		return
	}
	l.started = true
	l.w.Header().Set("Content-Type", l.contentType)
	l.w.Header().Set("Content-Disposition", `attachment; filename="`+l.filename+`"`)
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyStream) Write(b []byte) (int, error) {
	l.start()
	return l.w.Write(b)
}
