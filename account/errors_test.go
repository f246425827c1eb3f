package account

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestErrorAdapter: account returns its own errors (*Error, with a code and
// a message for people) and wraps everything else with context; the one
// adapter (ErrorCode, ErrorMessage) maps the rest to Internal with a
// generic message, so no cause (paths, storage errors) reaches a page,
// while the log keeps the context.
func TestErrorAdapter(t *testing.T) {
	cause := errors.New("bolt: database not open")
	internal := fmt.Errorf("load user %q: %w", "u1", cause)
	if ErrorCode(internal) != Internal || ErrorMessage(internal) != "Something went wrong on our side. Please try again." {
		t.Errorf("wrapped cause: %s, %q", ErrorCode(internal), ErrorMessage(internal))
	}
	if !errors.Is(internal, cause) || !strings.Contains(internal.Error(), `load user "u1"`) {
		t.Errorf("the log loses the cause or its context: %v", internal)
	}
	own := FieldErrorf("email", "That is not an email address.")
	wrapped := fmt.Errorf("save profile: %w", own)
	if ErrorCode(wrapped) != Invalid || ErrorMessage(wrapped) != own.Message || ErrorField(wrapped) != "email" {
		t.Errorf("an account error through a wrap: %s %q %q", ErrorCode(wrapped), ErrorMessage(wrapped), ErrorField(wrapped))
	}
}
