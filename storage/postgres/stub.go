package postgres

import (
	"errors"
	"fmt"
)

// unsupported is the error of a method whose area is not written yet (the
// stub_*.go files). Delete this file with the last stub.
func unsupported(method string) error {
	return fmt.Errorf("postgres: %s is not implemented yet: %w", method, errors.ErrUnsupported)
}
