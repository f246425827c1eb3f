package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyport/keyport/storage"
)

// The `keyport audit ...` commands read the audit log through the
// management API (GET /audit, /audit/export), whether or not serve runs.

// auditPage is the page size audit list asks for: the API's largest.
const auditPage = storage.MaxAuditLimit

func (c *cli) auditList(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("audit list")
	user := fs.String("user", "", "only events about this user (username, email, or the ID of a deleted user)")
	types := fs.String("type", "", "only these event types, comma separated (signin.failed,user.blocked)")
	since := fs.String("since", "", "only events since then: a duration back from now (24h, 90m) or a time (2026-12-06, 2026-12-06T10:00:00Z)")
	limit := fs.Int("limit", 50, "show at most this many events, newest first")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *limit < 1 {
		return usageError{"audit list: --limit must be at least 1"}
	}
	q := url.Values{}
	if *types != "" {
		q.Set("type", *types)
	}
	if *since != "" {
		from, err := sinceTime(*since, time.Now())
		if err != nil {
			return err
		}
		q.Set("from", from.UTC().Format(time.RFC3339))
	}
	api, err := c.connect(*cfgPath)
	if err != nil {
		return err
	}
	defer api.close()
	if *user != "" {
		id, err := api.auditUserID(ctx, *user)
		if err != nil {
			return err
		}
		q.Set("user", id)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTYPE\tACTOR\tTARGET\tCLIENT\tIP\tREASON")
	for left := *limit; left > 0; {
		q.Set("limit", strconv.Itoa(min(left, auditPage)))
		var page struct {
			Items      []storage.AuditEvent `json:"items"`
			NextCursor string               `json:"next_cursor"`
		}
		if _, err := api.call(ctx, http.MethodGet, "/audit?"+q.Encode(), nil, &page); err != nil {
			return err
		}
		for _, e := range page.Items {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Type, auditActor(e),
				cell(e.TargetUserID+e.TargetID), cell(e.ClientID), cell(e.IP), cell(oneLine(e.Reason)))
		}
		left -= len(page.Items)
		if page.NextCursor == "" || len(page.Items) == 0 {
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	return tw.Flush()
}

// auditUserID is the ID of the user login names, or login itself when no
// user has it as a username or email: the events of a deleted user are
// still found by its ID.
func (a *adminClient) auditUserID(ctx context.Context, login string) (string, error) {
	d, err := a.lookupUser(ctx, login)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return login, nil
	}
	if err != nil {
		return "", err
	}
	return d.User.ID, nil
}

// sinceTime reads --since: a duration back from now, an RFC 3339 time or
// a date (midnight UTC).
func sinceTime(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageError{fmt.Sprintf("audit list: --since %q is neither a duration like 24h nor a time like 2026-12-06T10:00:00Z or a date like 2026-12-06", v)}
}

// auditActor names who acted: their kind and, for a user or an app, ID.
func auditActor(e storage.AuditEvent) string {
	if e.ActorID == "" {
		return e.ActorKind
	}
	return e.ActorKind + ":" + e.ActorID
}

// cell keeps a table cell visible (and the columns aligned) when empty.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a reason on its line of the table.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// auditExport writes the whole audit log as JSON Lines, newest first, to
// --out (created for its owner only, never over a file) or standard
// output.
func (c *cli) auditExport(ctx context.Context, args []string) error {
	return c.export(ctx, args, "audit export", "/audit/export", "audit events")
}

// export is an export command: the API's JSON Lines at path to --out (see
// exportTo) or standard output.
func (c *cli) export(ctx context.Context, args []string, name, path, what string) error {
	fs, cfgPath := c.flags(name)
	out := fs.String("out", "", "write to this file (created, mode 0600) instead of standard output")
	api, err := c.open(fs, cfgPath, args, nil)
	if err != nil {
		return err
	}
	defer api.close()
	n, err := c.exportTo(*out, name, func(w io.Writer) error {
		_, err := api.call(ctx, http.MethodGet, path, nil, w)
		return err
	})
	if err == nil && *out != "" {
		fmt.Fprintf(c.stdout, "exported %d %s to %s\n", n, what, *out)
	}
	return err
}

// exportTo runs write into the file out (created with mode 0600, never
// over an existing file, removed when write fails: half an export is
// worse than none) or, when out is "", standard output; it returns how
// many lines were written.
func (c *cli) exportTo(out, what string, write func(io.Writer) error) (int, error) {
	if out == "" {
		lc := &lineCounter{w: c.stdout}
		err := write(lc)
		return lc.lines, err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	lc := &lineCounter{w: f}
	err = write(lc)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
		return 0, err
	}
	return lc.lines, nil
}

// lineCounter counts the lines written through it.
type lineCounter struct {
	w     io.Writer
	lines int
}

func (l *lineCounter) Write(b []byte) (int, error) {
	n, err := l.w.Write(b)
	for _, c := range b[:n] {
		if c == '\n' {
			l.lines++
		}
	}
	return n, err
}
