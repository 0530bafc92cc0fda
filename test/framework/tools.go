package framework

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// cachedTool returns the path of a tool: $env when set (`make test` sets it),
// else what hack/<script> prints, which builds the tool from the Go module
// proxy and caches it when it is missing. The script runs once per process.
func cachedTool(env, script string) func() (string, error) {
	return sync.OnceValues(func() (string, error) {
		if p := os.Getenv(env); p != "" {
			return p, nil
		}
		cmd := exec.CommandContext(context.Background(), filepath.Join(RepoRoot(), "hack", script))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("hack/%s: %w\n%s", script, err, stderr.String())
		}
		return strings.TrimSpace(string(out)), nil
	})
}

var promtoolBinary = cachedTool("PROMTOOL", "setup-promtool.sh")

// PromtoolBinary is the promtool to run: $PROMTOOL, which `make test` sets,
// or the one hack/setup-promtool.sh builds from the Go module proxy and caches.
func PromtoolBinary() (string, error) { return promtoolBinary() }
