package account

import (
	"errors"
	"strings"
	"testing"
)

func TestParseNetworks(t *testing.T) {
	got, err := ParseNetworks("10.1.2.3/8, 192.0.2.7\n2001:db8::1/32;10.0.0.0/8\r\n\t2001:DB8::7")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "2001:db8::7/128"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, err := ParseNetworks(" \n ,, "); err != nil || len(got) != 0 {
		t.Errorf("an empty list: %v %v", got, err)
	}
	if _, err := ParseNetworks(strings.Repeat("10.0.0.1,", 50)); err != nil {
		t.Errorf("50 entries are allowed: %v", err)
	}
	for _, bad := range []string{"10.0.0.0/33", "nope", "300.1.1.1", "fe80::1%eth0", "10.0.0.0/8 10.0.0.1/-1", "2001:db8::/129", strings.Repeat("10.0.0.1,", 51)} {
		_, err := ParseNetworks(bad)
		if ErrorCode(err) != Invalid || ErrorField(err) != "allowed_networks" {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// The message names the bad entry, and the entry is there for pages that
	// translate the message.
	_, err = ParseNetworks("10.0.0.0/8, not-an-ip")
	var bad *BadNetworkError
	if !strings.Contains(ErrorMessage(err), `"not-an-ip"`) || !errors.As(err, &bad) || bad.Entry != "not-an-ip" {
		t.Errorf("bad entry not named: %v", err)
	}
}

func TestNetworkAllows(t *testing.T) {
	for _, c := range []struct {
		nets []string
		ip   string
		ok   bool
	}{
		{nil, "203.0.113.1", true},
		{nil, "", true},
		{[]string{"10.0.0.0/8"}, "10.9.9.9", true},
		{[]string{"10.0.0.0/8"}, "11.0.0.1", false},
		{[]string{"10.0.0.0/8"}, "::ffff:10.0.0.1", true},
		{[]string{"10.0.0.0/8"}, "", false},
		{[]string{"10.0.0.0/8"}, "garbage", false},
		{[]string{"192.0.2.7/32"}, "192.0.2.7", true},
		{[]string{"192.0.2.7/32"}, "192.0.2.8", false},
		{[]string{"2001:db8::/32"}, "2001:db8::5", true},
		{[]string{"2001:db8::/32"}, "2001:db9::5", false},
		{[]string{"fe80::/10"}, "fe80::1%eth0", true},
	} {
		if NetworkAllows(c.nets, c.ip) != c.ok {
			t.Errorf("NetworkAllows(%v, %q) != %v", c.nets, c.ip, c.ok)
		}
	}
}

func TestAppPasswordFormat(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		p := newAppPassword()
		if len(strings.ReplaceAll(p, "-", "")) != 30 || strings.Count(p, "-") != 4 || strings.Trim(p, appPasswordAlphabet+"-") != "" {
			t.Fatalf("app password %q", p)
		}
		if seen[p] {
			t.Fatalf("app password %q repeated", p)
		}
		seen[p] = true
		// Typed in capitals, with spaces, or without separators: the same.
		canon := normalizeAppPassword(p)
		for _, typed := range []string{strings.ToUpper(p), strings.ReplaceAll(p, "-", " "), strings.ReplaceAll(p, "-", ""), " " + p + "\n"} {
			if normalizeAppPassword(typed) != canon {
				t.Errorf("%q does not match %q", typed, p)
			}
		}
	}
}
