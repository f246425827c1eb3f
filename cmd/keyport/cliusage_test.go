package main

import (
	"regexp"
	"strings"
	"testing"
)

// flagLine is how the flag package lists a flag in a command's --help.
var flagLine = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)

// commandLine is a command of the usage text: "keyport client create ...".
var commandLine = regexp.MustCompile(`(?m)^  keyport ([a-z]+)(?: ([a-z|-]+))?`)

// TestUsageListsEveryFlag runs every command of the usage text with --help
// and checks that each flag the command accepts is in the usage text, so a
// new flag cannot be left out of `keyport --help`.
func TestUsageListsEveryFlag(t *testing.T) {
	env := cliEnv(t.TempDir())
	commands := commandLine.FindAllStringSubmatch(usage, -1)
	if len(commands) < 10 {
		t.Fatalf("found only %d commands in the usage text", len(commands))
	}
	for _, c := range commands {
		for _, sub := range strings.Split(c[2], "|") {
			args := []string{c[1]}
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
				if !strings.Contains(usage, "--"+f[1]+" ") && !strings.Contains(usage, "--"+f[1]+"]") && !strings.Contains(usage, "--"+f[1]+"\n") {
					t.Errorf("keyport %s accepts --%s, which the usage text does not mention", strings.Join(args, " "), f[1])
				}
			}
		}
	}
}
