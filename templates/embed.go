// Package templates holds Keyport's HTML templates and static assets.
package templates

import "embed"

// FS contains the page templates (*.html), the static directory and the
// mail templates (mail/, rendered by package mail).
//
//go:embed *.html static mail
var FS embed.FS
