package metering

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Checkpoint is everything a metering process must hand to the next one:
// how far pods have been counted, the sums of the windows still open, and
// the closed windows whose sums are final but which have not been delivered
// yet. It is the one source of truth for what has been counted and emitted;
// the outputs are sinks only.
type Checkpoint struct {
	// Window is the window length the sums were made for.
	Window time.Duration
	// LastPass is the time up to which pods have been counted.
	LastPass time.Time
	// Delivered is the end of the last window that was delivered; zero
	// before the first.
	Delivered time.Time
	// Open are the windows that can still grow, oldest first.
	Open []Window
	// Pending are closed windows, oldest first, whose sums are fixed and
	// which are delivered in this order. A window stays here until its sink
	// acknowledged it.
	Pending []Window
}

// CheckpointStore keeps the checkpoint between processes.
type CheckpointStore interface {
	// Load returns the saved checkpoint, or nil when none was saved yet.
	Load(ctx context.Context) (*Checkpoint, error)
	// Save replaces the checkpoint if nobody else saved one since this
	// store's last Load or Save; otherwise it returns an error that wraps
	// ErrFenced and saves nothing.
	Save(ctx context.Context, cp *Checkpoint) error
	// Probe reports whether the checkpoint can be read, without taking
	// part in fencing: a standby replica's readiness.
	Probe(ctx context.Context) error
	// Describe names where the checkpoint lives, for logs.
	Describe() string
}

// ErrFenced means another metering process saved the checkpoint: this one
// has lost its leadership (or was started next to another one) and must
// stop before it delivers anything.
var ErrFenced = errors.New("another metering process saved the checkpoint since this one read it")

// checkpointVersion changes with the encoding.
const checkpointVersion = 2

type encodedCheckpoint struct {
	Version   int             `json:"version"`
	Window    string          `json:"window"`
	LastPass  time.Time       `json:"lastPass"`
	Delivered *time.Time      `json:"delivered,omitempty"`
	Open      []encodedWindow `json:"open"`
	Pending   []encodedWindow `json:"pending"`
}

type encodedWindow struct {
	Start time.Time         `json:"start"`
	Usage map[string]*Usage `json:"usage"`
}

// encodeCheckpoint renders cp as gzipped JSON. Floats survive the round trip
// exactly (encoding/json writes the shortest form that parses back to the
// same float64), which is what makes a redelivered window identical.
func encodeCheckpoint(cp *Checkpoint) ([]byte, error) {
	enc := encodedCheckpoint{
		Version:  checkpointVersion,
		Window:   cp.Window.String(),
		LastPass: cp.LastPass.UTC(),
		Open:     encodeWindows(cp.Open),
		Pending:  encodeWindows(cp.Pending),
	}
	if !cp.Delivered.IsZero() {
		d := cp.Delivered.UTC()
		enc.Delivered = &d
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if err := json.NewEncoder(zw).Encode(enc); err != nil {
		return nil, fmt.Errorf("encoding the metering checkpoint: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func encodeWindows(windows []Window) []encodedWindow {
	out := make([]encodedWindow, 0, len(windows))
	for _, w := range windows {
		out = append(out, encodedWindow{Start: w.Start.UTC(), Usage: w.Usage})
	}
	return out
}

// decodeCheckpoint reads what encodeCheckpoint wrote.
func decodeCheckpoint(data []byte) (*Checkpoint, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decompressing the metering checkpoint: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("decompressing the metering checkpoint: %w", err)
	}
	var enc encodedCheckpoint
	if err := json.Unmarshal(raw, &enc); err != nil {
		return nil, fmt.Errorf("decoding the metering checkpoint: %w", err)
	}
	if enc.Version != checkpointVersion {
		return nil, fmt.Errorf("the metering checkpoint has version %d, this process reads version %d", enc.Version, checkpointVersion)
	}
	window, err := time.ParseDuration(enc.Window)
	if err != nil || window <= 0 {
		return nil, fmt.Errorf("the metering checkpoint has an invalid window %q", enc.Window)
	}
	cp := &Checkpoint{Window: window, LastPass: enc.LastPass.UTC()}
	if enc.Delivered != nil {
		cp.Delivered = enc.Delivered.UTC()
	}
	cp.Open = decodeWindows(enc.Open, window)
	cp.Pending = decodeWindows(enc.Pending, window)
	return cp, nil
}

func decodeWindows(windows []encodedWindow, length time.Duration) []Window {
	out := make([]Window, 0, len(windows))
	for _, w := range windows {
		usage := make(map[string]*Usage, len(w.Usage))
		for ns, u := range w.Usage {
			if u != nil {
				usage[ns] = u
			}
		}
		out = append(out, Window{Start: w.Start.UTC(), End: w.Start.UTC().Add(length), Usage: usage})
	}
	return out
}
