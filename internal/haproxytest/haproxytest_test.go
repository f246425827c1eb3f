package haproxytest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Requests alternate between the backends (round robin, no stickiness),
// and a backend that is gone stops getting them.
func TestRoundRobinAndFailover(t *testing.T) {
	backend := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) }))
	}
	a, b := backend("a"), backend("b")
	defer a.Close()
	lb := Start(t, a.Listener.Addr().String(), b.Listener.Addr().String())
	get := func() string {
		t.Helper()
		resp, err := http.Get(lb.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s\n%s", resp.StatusCode, body, lb.Log())
		}
		return string(body)
	}
	seen := map[string]int{}
	for range 10 {
		seen[get()]++
	}
	if seen["a"] != 5 || seen["b"] != 5 {
		t.Errorf("10 requests went %v, want 5 to each backend", seen)
	}
	b.Close()
	for range 10 {
		if got := get(); got != "a" {
			t.Fatalf("a request went to %q after b closed", got)
		}
	}
}
