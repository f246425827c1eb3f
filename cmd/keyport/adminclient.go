package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/keyport/keyport/control"
)

// adminClient runs the command line's requests against the management API
// (/api/v1), whether or not `keyport serve` runs: through the control
// socket of the server that holds the database, or, when none does,
// through the same API served in this process over the database opened
// here. Either way a command meets the one handler, with its rules,
// validation and audit entries, as the console and scripts do.
type adminClient struct {
	http *http.Client
	// remote: a running server answers (through the socket).
	remote bool
	close  func() error
}

// connect finds the API for the configuration at cfgPath.
// open parses a command's flags, refuses what check finds missing (nil:
// nothing is required), and connects (connect): the start of every
// command that goes through the management API.
func (c *cli) open(fs *flag.FlagSet, cfgPath *string, args []string, check func() error) (*adminClient, error) {
	if err := c.parse(fs, args); err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(); err != nil {
			return nil, err
		}
	}
	return c.connect(*cfgPath)
}

// required is a check for open: usage (a usage error) when a flag's value
// is empty.
func required(usage string, values ...*string) func() error {
	return func() error {
		for _, v := range values {
			if *v == "" {
				return usageError{usage}
			}
		}
		return nil
	}
}

func (c *cli) connect(cfgPath string) (*adminClient, error) {
	cfg, err := c.loadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	m, err := openStore(cfg, newLogger("warn", c.stderr), 300*time.Millisecond, nil)
	var inUse *inUseError
	if errors.As(err, &inUse) {
		client, err := control.Client(filepath.Join(cfg.DataDir, control.SocketName))
		if err != nil {
			return nil, err
		}
		return &adminClient{http: client, remote: true, close: func() error { client.CloseIdleConnections(); return nil }}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := m.load(); err != nil {
		m.Close()
		return nil, err
	}
	return &adminClient{http: &http.Client{Transport: &handlerTransport{h: m.Portal.LocalAPI()}}, close: m.Close}, nil
}

// apiError is an error answer of the API, as the command line shows it.
type apiError struct {
	Status  int
	Code    string
	Message string
	Field   string
}

func (e *apiError) Error() string {
	if e.Field != "" && !strings.Contains(strings.ToLower(e.Message), strings.ToLower(e.Field)) {
		return e.Message + " (" + e.Field + ")"
	}
	return e.Message
}

// call sends a JSON request (body may be nil) and decodes a JSON answer
// into out (may be nil; an io.Writer gets the answer as it is); an error
// answer becomes an *apiError.
func (a *adminClient) call(ctx context.Context, method, path string, body, out any) (http.Header, error) {
	var rd io.Reader
	contentType := ""
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd, contentType = bytes.NewReader(b), "application/json"
	}
	resp, err := a.do(ctx, method, path, contentType, rd)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return resp.Header, readAPIError(resp)
	}
	if out != nil {
		if w, ok := out.(io.Writer); ok {
			_, err = io.Copy(w, resp.Body)
		} else {
			err = json.NewDecoder(resp.Body).Decode(out)
		}
		if err != nil {
			return resp.Header, fmt.Errorf("read the answer to %s %s: %w", method, path, err)
		}
	}
	return resp.Header, nil
}

// do sends a request with a body of any type (contentType, when body is
// not nil) and returns the answer as it is, for the caller to close.
func (a *adminClient) do(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://keyport/api/v1"+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("management API: %w", err)
	}
	return resp, nil
}

// readAPIError reads an error answer as an *apiError.
func readAPIError(resp *http.Response) error {
	var e struct {
		Error struct{ Code, Message, Field, Ref string }
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e) != nil || e.Error.Message == "" {
		return &apiError{Status: resp.StatusCode, Message: resp.Status}
	}
	msg := e.Error.Message
	if e.Error.Ref != "" {
		msg += " (ref " + e.Error.Ref + ")"
	}
	return &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: msg, Field: e.Error.Field}
}

// handlerTransport serves requests with a handler in this process,
// streaming the answer through a pipe rather than holding it whole (an
// export may be large).
type handlerTransport struct{ h http.Handler }

func (t *handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	pr, pw := io.Pipe()
	w := &pipeResponse{header: http.Header{}, body: pw, bodyR: pr, ready: make(chan struct{}), req: req}
	req = req.Clone(req.Context())
	req.RemoteAddr = "127.0.0.1:0"
	req.RequestURI = req.URL.RequestURI()
	if req.Body == nil {
		req.Body = http.NoBody
	}
	go func() {
		defer func() {
			w.WriteHeader(http.StatusOK) // a handler that wrote nothing
			pw.Close()
		}()
		t.h.ServeHTTP(w, req)
	}()
	select {
	case <-w.ready:
		return w.resp, nil
	case <-req.Context().Done():
		pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
}

// pipeResponse is the ResponseWriter of handlerTransport: the status and
// headers become the Response at the first write, the body follows
// through the pipe.
type pipeResponse struct {
	header http.Header
	body   *io.PipeWriter
	bodyR  *io.PipeReader
	req    *http.Request
	once   sync.Once
	ready  chan struct{}
	resp   *http.Response
}

func (p *pipeResponse) Header() http.Header { return p.header }

func (p *pipeResponse) WriteHeader(status int) {
	p.once.Do(func() {
		p.resp = &http.Response{
			Body:       p.bodyR,
			StatusCode: status,
			Status:     fmt.Sprintf("%d %s", status, http.StatusText(status)),
			Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:  p.header.Clone(),
			Request: p.req,
		}
		close(p.ready)
	})
}

func (p *pipeResponse) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return p.body.Write(b)
}
