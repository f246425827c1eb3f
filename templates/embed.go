// Package templates holds Keyport's HTML templates and static assets.
package templates

import "embed"

// FS contains the page templates (*.html) and the static directory.
//
//go:embed *.html static
var FS embed.FS
