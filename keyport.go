// Package keyport holds what must live at the root of the module: the
// embedded default configuration. The config package decodes it before the
// operator's file, so config.toml is both the documented sample and the
// source of every default.
package keyport

import _ "embed"

// DefaultConfig is the content of config.toml at the root of the module.
//
//go:embed config.toml
var DefaultConfig []byte
