package metering

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The state file sits next to a file output (<output>.state). After every
// pass it holds the usage of the windows that are still open and the time
// of the pass, so that a new process (after a restart or a change of
// leader) carries on from that pass instead of from the end of the last
// emitted window. Without it, pods that ran and ended in the open window
// before the restart would be lost. It is written after the output, so it
// never claims less than the output holds; a missing, stale or unreadable
// state file only means counting resumes from the output's checkpoint.

// stateVersion changes when the format does.
const stateVersion = 1

type savedState struct {
	Version  int           `json:"version"`
	Window   string        `json:"window"`
	LastPass time.Time     `json:"lastPass"`
	Open     []savedWindow `json:"open"`
}

type savedWindow struct {
	Start time.Time         `json:"start"`
	Usage map[string]*Usage `json:"usage"`
}

// statePath is the state file of a file output.
func statePath(output string) string { return output + ".state" }

// saveState replaces the state file atomically: write a temporary file,
// sync it, rename it over the old one.
func saveState(path string, window time.Duration, last time.Time, open []Window) error {
	st := savedState{Version: stateVersion, Window: window.String(), LastPass: last.UTC(), Open: make([]savedWindow, 0, len(open))}
	for _, w := range open {
		st.Open = append(st.Open, savedWindow{Start: w.Start.UTC(), Usage: w.Usage})
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes renames and new files in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close() //nolint:errcheck // read-only
	return d.Sync()
}

// loadState reads a state file written for the same window length.
func loadState(path string, window time.Duration) (time.Time, []Window, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, nil, err
	}
	var st savedState
	if err := json.Unmarshal(data, &st); err != nil {
		return time.Time{}, nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return time.Time{}, nil, fmt.Errorf("%s has version %d, want %d", path, st.Version, stateVersion)
	}
	if st.Window != window.String() {
		return time.Time{}, nil, fmt.Errorf("%s was written for windows of %s, not %s", path, st.Window, window)
	}
	open := make([]Window, 0, len(st.Open))
	for _, w := range st.Open {
		if w.Usage == nil {
			w.Usage = map[string]*Usage{}
		}
		for ns, u := range w.Usage {
			if u == nil {
				delete(w.Usage, ns)
			}
		}
		open = append(open, Window{Start: w.Start.UTC(), End: w.Start.UTC().Add(window), Usage: w.Usage})
	}
	return st.LastPass.UTC(), open, nil
}
