package bolt

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProbeAlmostFull: with no room for the file to grow but writes still
// working (in its free pages), the probe warns once; it neither logs an
// error nor makes Health fail, which would take a working server out of
// service. It runs in a child process, whose file-size limit it lowers.
func TestProbeAlmostFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyport.db")
	populate(t, path, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChildOp+"=probe-full", envChildPath+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	log := string(out)
	lines := strings.Split(strings.TrimSpace(log), "\n")
	if last := lines[len(lines)-1]; last != "OK" {
		t.Errorf("health with no room to grow: %s", last)
	}
	if strings.Contains(log, "level=ERROR") {
		t.Errorf("an error logged while writes work:\n%s", log)
	}
	// Once per file that cannot grow (the main one, whose size is the
	// limit; the flow file too when it is the larger), not once per probe.
	warned := func(file string) int {
		return strings.Count(log, "almost full: the file cannot grow, and writes will fail once its free pages are used\" path="+file+" ")
	}
	if n := warned(path); n != 1 {
		t.Errorf("%d almost-full warnings for 3 probes of the main file:\n%s", n, log)
	}
	if n := warned(FlowPath(path)); n > 1 {
		t.Errorf("%d almost-full warnings for 3 probes of the flow file:\n%s", n, log)
	}
}
