package main

import (
	"regexp"
	"strings"
	"testing"
)

// flagLine is how the flag package lists a flag in a command's --help.
var flagLine = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)

// commandLine is a command of the usage text: "keyport client create ...";
// a subcommand is a word, never a flag ("keyport backup --to FILE").
var commandLine = regexp.MustCompile(`^  keyport ([a-z]+)(?: ([a-z][a-z0-9|-]*))?`)

// usageEntry is one command's part of the usage text: its line and the
// more deeply indented lines that continue it.
type usageEntry struct {
	command, subcommands string // "user", "block|unblock"
	text                 string
}

// usageEntries splits the usage text into its commands.
func usageEntries(usage string) []usageEntry {
	var out []usageEntry
	for _, line := range strings.Split(usage, "\n") {
		if m := commandLine.FindStringSubmatch(line); m != nil {
			out = append(out, usageEntry{command: m[1], subcommands: m[2], text: line})
			continue
		}
		if len(out) > 0 && strings.HasPrefix(line, "    ") && strings.TrimSpace(line) != "" {
			out[len(out)-1].text += "\n" + line
		}
	}
	return out
}

// mentions tells whether text names --flag as a whole word (or with its
// value: --skip-consent=true|false).
func mentions(text, flag string) bool {
	return regexp.MustCompile(`--` + regexp.QuoteMeta(flag) + `([ \]\n.,=]|$)`).MatchString(text)
}

// TestUsageListsEveryFlag runs every command of the usage text with --help
// and checks that each flag the command accepts is on that command's own
// entry of the usage text (--config, which every command takes, in the
// note below them), so a new flag cannot be left out of `keyport --help`
// or listed under another command.
func TestUsageListsEveryFlag(t *testing.T) {
	env := cliEnv(t.TempDir())
	entries := usageEntries(usage)
	if len(entries) < 10 {
		t.Fatalf("found only %d commands in the usage text", len(entries))
	}
	_, note, _ := strings.Cut(usage, "\n\n"+"Every command")
	for _, e := range entries {
		for _, sub := range strings.Split(e.subcommands, "|") {
			args := []string{e.command}
			if sub != "" {
				args = append(args, sub)
			}
			r := cliRun(t, env, "", append(args, "--help")...)
			flags := flagLine.FindAllStringSubmatch(r.Stderr, -1)
			if r.Code != 0 || len(flags) == 0 {
				t.Errorf("keyport %s --help: %s", strings.Join(args, " "), r)
				continue
			}
			for _, f := range flags {
				where := e.text
				if f[1] == "config" {
					where = "Every command" + note
				}
				if !mentions(where, f[1]) {
					t.Errorf("keyport %s accepts --%s, which its usage entry does not list:\n%s", strings.Join(args, " "), f[1], e.text)
				}
			}
		}
	}
}

// The check is per command: a flag listed only under another command is
// missing from its own.
func TestUsageEntries(t *testing.T) {
	text := "Usage:\n  keyport serve [--config FILE]\n  keyport client create --id ID\n                        [--public] [--skip-consent]\n  keyport client list\n\nEvery command takes --config FILE.\n"
	entries := usageEntries(text)
	if len(entries) != 3 || entries[1].command != "client" || entries[1].subcommands != "create" || !mentions(entries[1].text, "skip-consent") {
		t.Fatalf("entries: %+v", entries)
	}
	if mentions(entries[2].text, "skip-consent") || mentions(entries[0].text, "id") || mentions("--public-key", "public") {
		t.Error("a flag of one command counts for another")
	}
}
