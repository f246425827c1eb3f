package provider

import (
	"bytes"
	"testing"

	"github.com/keyport/keyport/account"
)

// testSubjects are subject rules with a fixed key, as a server's are
// derived from its sealing key.
func testSubjects(t testing.TB) *account.Subjects {
	t.Helper()
	s, err := account.NewSubjects(bytes.Repeat([]byte{7}, account.SubjectKeyLen))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
