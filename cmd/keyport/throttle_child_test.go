package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
)

// Throttling and bounded hashing measured on `keyport serve` as a process
// of its own (startChild): what it checks is read from its log, its memory
// from /proc, and its failures must survive a restart.

// waitForCount polls the child's log until want lines contain needle, and
// returns how many there are then (the log is copied from the child's
// output by another goroutine, a moment behind the responses).
func waitForCount(c *childServer, needle string, want int) int {
	n := 0
	for range 100 {
		if n = strings.Count(c.Logs(), needle); n >= want {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// 100 parallel wrong guesses against one account, through the login form
// and through forward auth's Basic, with a limit of 10: at most 10 are
// checked, the rest get 429 with Retry-After at once, and nothing is
// hashed for them. The failures survive a crash. Today all 100 were
// checked, and a restart forgot them.
func TestParallelGuessesChecked(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"victim", "victim2"} {
		cliMust(t, cliEnv(dir), testPassword+"\n", "user", "create", "--username", name, "--email", name+"@example.com", "--name", "Victim", "--password-stdin")
	}
	c := startChild(t, dir, "")

	count := func(what string, statuses []int, headers []http.Header) (checked int) {
		t.Helper()
		byStatus := map[int]int{}
		for i, s := range statuses {
			byStatus[s]++
			if s == http.StatusTooManyRequests && retryAfter(headers[i]) <= 0 {
				t.Errorf("%s: a 429 without Retry-After", what)
			}
		}
		t.Logf("%s: %v", what, byStatus)
		if byStatus[http.StatusUnauthorized] > 10 || byStatus[http.StatusUnauthorized]+byStatus[http.StatusTooManyRequests] != len(statuses) {
			t.Errorf("%s: %v; want at most 10 checked (401), the rest 429", what, byStatus)
		}
		return byStatus[http.StatusUnauthorized]
	}

	// The login form: 100 browsers with their pages, then all at once.
	browsers, pages := make([]*browser, 100), make([]page, 100)
	for i := range browsers {
		browsers[i] = newBrowser(t)
		pages[i] = browsers[i].get(c.URL + "/login")
	}
	results := parallel(100, func(i int) page {
		return browsers[i].submit(pages[i], "/login", url.Values{"login": {"victim"}, "password": {fmt.Sprintf("wrong guess %d", i)}})
	})
	statuses, headers := make([]int, 100), make([]http.Header, 100)
	for i, p := range results {
		statuses[i], headers[i] = p.Status, p.Header
		if p.Status == http.StatusTooManyRequests && !strings.Contains(p.Body, "Too many failed sign-in attempts. Please try again in") {
			t.Errorf("a 429 page that does not say how long to wait:\n%s", truncateBody(p.Body))
		}
	}
	checked := count("login form", statuses, headers)
	line := `msg="sign-in failed" client_ip=127.0.0.1 client_net=127.0.0.1 method=pwd login=victim reason="wrong password"`
	if n := waitForCount(c, line, checked); n != checked {
		t.Errorf("login form: %d answered 401 but %d passwords checked (logged)", checked, n)
	}

	// Forward auth's Basic, against another account.
	type answer struct {
		status int
		header http.Header
	}
	answers := parallel(100, func(i int) answer {
		req, _ := http.NewRequest(http.MethodGet, c.URL+"/auth/verify", nil)
		req.SetBasicAuth("victim2", fmt.Sprintf("wrong guess %d", i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return answer{}
		}
		resp.Body.Close()
		return answer{resp.StatusCode, resp.Header}
	})
	for i, a := range answers {
		statuses[i], headers[i] = a.status, a.header
	}
	checked = count("forward auth", statuses, headers)
	line = `msg="sign-in failed" client_ip=127.0.0.1 client_net=127.0.0.1 method=pwd login=victim2 reason="wrong password"`
	if n := waitForCount(c, line, checked); n != checked {
		t.Errorf("forward auth: %d answered 401 but %d passwords checked (logged)", checked, n)
	}
	if !strings.Contains(c.Logs(), `msg="sign-in throttled" client_ip=127.0.0.1 client_net=127.0.0.1 method=pwd login=victim limit=account_address`) {
		t.Errorf("no line for the trip:\n%s", c.Logs())
	}

	// After a crash and a restart the failures still count (each was
	// committed before its answer): the right password waits.
	c.kill()
	c = startChild(t, dir, "")
	b := newBrowser(t)
	p := b.submit(b.get(c.URL+"/login"), "/login", url.Values{"login": {"victim"}, "password": {testPassword}})
	if p.Status != http.StatusTooManyRequests || retryAfter(p.Header) <= 0 {
		t.Errorf("the right password after a restart: %d, Retry-After %q", p.Status, p.Header.Get("Retry-After"))
	}
	req, _ := http.NewRequest(http.MethodGet, c.URL+"/auth/verify", nil)
	req.SetBasicAuth("victim2", testPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || retryAfter(resp.Header) <= 0 {
		t.Errorf("Basic with the right password after a restart: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// 160 parallel sign-ins with made-up names (nothing to throttle: each name
// is new, and the address limit is raised): password hashing is bounded,
// so memory stays near its idle level, the surplus gets 503 with
// Retry-After at once, and a bystander's client_credentials call still
// succeeds. Today every sign-in hashed at once: memory went towards a
// gigabyte, and nobody got a 503.
func TestHashingBounded(t *testing.T) {
	dir := t.TempDir()
	const secret = "bystander-secret-0123456789"
	cliMust(t, cliEnv(dir), secret+"\n", "client", "create", "--id", "bystander", "--name", "Bystander",
		"--redirect-uri", "http://127.0.0.1:9/cb", "--grant", "client_credentials", "--secret-stdin")
	c := startChild(t, dir, "[limits]\nmax_login_attempts_per_address = 1000\n")
	bystander := func() (int, time.Duration) {
		req, _ := http.NewRequest(http.MethodPost, c.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("bystander", secret)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("bystander: %v", err)
			return 0, 0
		}
		resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}

	// The idle baseline includes a sign-in and a token, so the first
	// hash's memory and the token path's are in it.
	const n = 160
	browsers, pages := make([]*browser, n+1), make([]page, n+1)
	for i := range browsers {
		browsers[i] = newBrowser(t)
		pages[i] = browsers[i].get(c.URL + "/login")
	}
	if p := browsers[n].submit(pages[n], "/login", url.Values{"login": {"warm-up"}, "password": {"some password"}}); p.Status != http.StatusUnauthorized {
		t.Fatalf("warm-up sign-in: %d", p.Status)
	}
	if s, idle := bystander(); s != http.StatusOK {
		t.Fatalf("bystander before: %d", s)
	} else {
		t.Logf("bystander's client_credentials call, idle: %s", idle)
	}
	_, idlePeak := c.memory()

	var wg sync.WaitGroup
	var bystanderStatus []int
	var bystanderTime []time.Duration
	flood := make(chan struct{})
	wg.Go(func() {
		<-flood
		time.Sleep(20 * time.Millisecond) // into the flood
		for range 3 {
			s, d := bystander()
			bystanderStatus, bystanderTime = append(bystanderStatus, s), append(bystanderTime, d)
		}
	})
	results := parallel(n, func(i int) page {
		if i == 0 {
			close(flood)
		}
		return browsers[i].submit(pages[i], "/login", url.Values{"login": {"made-up-" + account.RandomString(12)}, "password": {"some password"}})
	})
	wg.Wait()
	_, peak := c.memory()

	byStatus := map[int]int{}
	for _, p := range results {
		byStatus[p.Status]++
		if p.Status == http.StatusServiceUnavailable && (retryAfter(p.Header) <= 0 || !strings.Contains(p.Body, "Please try again in")) {
			t.Errorf("a 503 without Retry-After or a wait on the page: %v\n%s", p.Header, truncateBody(p.Body))
		}
	}
	t.Logf("%d parallel sign-ins: %v; peak memory %d MiB after %d MiB idle (race detector: %v); bystander during the flood: %v %v",
		n, byStatus, peak>>20, idlePeak>>20, raceEnabled, bystanderStatus, bystanderTime)
	if byStatus[http.StatusServiceUnavailable] == 0 || byStatus[http.StatusUnauthorized]+byStatus[http.StatusServiceUnavailable] != n {
		t.Errorf("answers %v: want wrong passwords (401) and, beyond the hash gate, 503s", byStatus)
	}
	for _, s := range bystanderStatus {
		if s != http.StatusOK {
			t.Errorf("the bystander's client_credentials call during the flood: %d", s)
		}
	}
	// Each argon2id hash takes 7 MiB; one per core runs at once, a few wait,
	// the rest are refused. 160 at once took 0.9 GB more than idle before
	// the gate. With the gate, the growth is the hashes of the queue left
	// as garbage until the collector runs (serve sets GOGC=400), plus the
	// connections: about 80 MiB measured, 290 MiB under the race detector,
	// whose shadow memory multiplies the heap's cost.
	bound := int64(256 << 20)
	if raceEnabled {
		bound *= 3
	}
	if grew := peak - idlePeak; grew > bound {
		t.Errorf("peak memory grew by %d MiB during the flood (idle peak %d MiB), want at most %d MiB", grew>>20, idlePeak>>20, bound>>20)
	}
}
