package main

import (
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fail2banRegex finds Debian's fail2ban-regex. When it is missing the test
// is skipped, unless KEYPORT_REQUIRE_INTEGRATION=1 (CI and scripts/test.sh),
// where it fails.
func fail2banRegex(t *testing.T) string {
	t.Helper()
	if path, err := exec.LookPath("fail2ban-regex"); err == nil {
		return path
	}
	if os.Getenv("KEYPORT_REQUIRE_INTEGRATION") == "1" {
		t.Fatal("fail2ban-regex is not installed (apt-get install fail2ban); KEYPORT_REQUIRE_INTEGRATION=1 requires the fail2ban filter test")
	}
	t.Skip("fail2ban-regex is not installed (apt-get install fail2ban): skipping the fail2ban filter test")
	return ""
}

// The shipped fail2ban filter, run by the real fail2ban-regex over lines a
// running Keyport wrote: every failure (form, Basic, client secret) is
// found under the network Keyport throttles (an IPv4 address, an IPv6
// /64), and login names made to look like another address, or like a line
// of their own, never are. Today an IPv6 client was banned by its single
// address, while it had a whole /64 to pick new ones from.
func TestFail2banFilter(t *testing.T) {
	bin := fail2banRegex(t)
	filter, err := filepath.Abs("../../docs/fail2ban/filter.d/keyport.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cliMust(t, cliEnv(dir), testPassword+"\n", "user", "create", "--username", "alice", "--email", "alice@example.com", "--name", "Alice", "--password-stdin")
	cliMust(t, cliEnv(dir), "app-secret-0123456789abcdef\n", "client", "create", "--id", "app", "--name", "App",
		"--redirect-uri", "http://127.0.0.1:9/cb", "--grant", "client_credentials", "--secret-stdin")
	// The test plays a reverse proxy: it is trusted to say who the client is.
	c := startChild(t, dir, "trusted_proxies = [\"127.0.0.1\"]\n")

	from := func(req *http.Request, client string) int {
		req.Header.Set("X-Forwarded-For", client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	form := func(client, login string) {
		b := newBrowser(t)
		p := b.get(c.URL + "/login")
		fields := formFields(p.Body)
		fields.Set("login", login)
		fields.Set("password", "not the password 123")
		req, _ := http.NewRequest(http.MethodPost, c.URL+"/login", strings.NewReader(fields.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", client)
		if p := b.do(req); p.Status != http.StatusUnauthorized {
			t.Fatalf("sign-in as %q from %s: %d", login, client, p.Status)
		}
	}
	basic := func(client, login string) {
		req, _ := http.NewRequest(http.MethodGet, c.URL+"/auth/verify", nil)
		req.SetBasicAuth(login, "not the password 123")
		if s := from(req, client); s != http.StatusUnauthorized {
			t.Fatalf("Basic as %q from %s: %d", login, client, s)
		}
	}
	secret := func(client, id string) {
		req, _ := http.NewRequest(http.MethodPost, c.URL+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, "not-the-secret-0123456789")
		if s := from(req, client); s != http.StatusUnauthorized {
			t.Fatalf("client %q from %s: %d", id, client, s)
		}
	}
	want := map[string]int{}
	for range 3 {
		form("203.0.113.7", "alice")
		want["203.0.113.7"]++
	}
	// IPv6: banned by the /64 Keyport throttles, whichever address of it
	// is used.
	for _, ip := range []string{"2001:db8::7", "2001:db8::8", "2001:db8:0:0:ffff::1"} {
		basic(ip, "alice")
		want["2001:db8::/64"]++
	}
	secret("198.51.100.9", "app")
	secret("198.51.100.9", "no-such-app")
	want["198.51.100.9"] += 2
	// Injection attempts: another address inside the name, and a name that
	// would be a line of its own if written raw.
	// (Short enough to be logged whole: longer names are cut.)
	form("203.0.113.8", `x" client_ip=10.9.9.9 msg="sign-in failed" client_ip=10.9.9.10`)
	form("203.0.113.8", "\nlevel=WARN msg=\"sign-in failed\" client_ip=10.9.9.11 x")
	basic("203.0.113.8", `bob client_ip=10.9.9.12`)
	secret("203.0.113.8", `app" client_ip=10.9.9.13`)
	want["203.0.113.8"] += 4

	failures := len(regexp.MustCompile(`msg="(sign-in failed|client authentication failed)"`).FindAllString(waitLog(c, 12), -1))
	logFile := filepath.Join(t.TempDir(), "keyport.log")
	if err := os.WriteFile(logFile, []byte(c.Logs()), 0o600); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(bin, "-o", "ip", logFile, filter).CombinedOutput()
	if err != nil {
		t.Fatalf("fail2ban-regex: %v\n%s", err, out)
	}
	got := map[string]int{}
	for _, ip := range strings.Fields(string(out)) {
		got[ip]++
	}
	if failures != 12 || !mapsEqual(got, want) {
		t.Errorf("fail2ban found %v, want %v (%d failure lines)\n%s", got, want, failures, c.Logs())
	}

	// Every match has its time: fail2ban ignores lines whose date it
	// cannot read.
	out, err = exec.Command(bin, logFile, filter).CombinedOutput()
	if err != nil {
		t.Fatalf("fail2ban-regex: %v\n%s", err, out)
	}
	matched := regexp.MustCompile(`Lines: \d+ lines, 0 ignored, (\d+) matched`).FindSubmatch(out)
	dated := regexp.MustCompile(`\[(\d+)\] \{\^LN-BEG\}time=`).FindSubmatch(out)
	lines := strings.Count(strings.TrimSpace(c.Logs()), "\n") + 1
	if matched == nil || string(matched[1]) != "12" || dated == nil || atoi(t, dated[1]) < lines-2 {
		t.Errorf("fail2ban-regex summary (want 12 matched, every line dated but the CLI warning):\n%s", out)
	}
}

// waitLog waits until the child has logged n failure lines and returns its log.
func waitLog(c *childServer, n int) string {
	waitForCount(c, `level=WARN msg="sign-in failed"`, n-3)
	waitForCount(c, `level=WARN msg="client authentication failed"`, 3)
	return c.Logs()
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	return !slices.ContainsFunc(keys, func(k string) bool { return a[k] != b[k] })
}

func atoi(t *testing.T, b []byte) int {
	n, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
