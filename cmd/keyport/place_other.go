//go:build !linux

package main

import "errors"

// renameNoReplace: without a portable rename that refuses to replace,
// place copies to a file it creates exclusively.
var renameNoReplace = func(string, string) error { return errors.ErrUnsupported }
