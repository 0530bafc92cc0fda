// Package checkpoint keeps what a metering process hands to the next one:
// the Checkpoint (how far pods have been counted, the open windows' sums and
// the closed windows not yet delivered), its encoding (gzipped JSON,
// versioned and bounded on decoding) and the Store that keeps it, in fenced
// ConfigMaps that a lost leader cannot overwrite.
//
// It neither counts nor delivers usage (packages usage and sink do), and it
// decides nothing about when to save: the meter does.
package checkpoint

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/meshcloud/meshstack-operator/internal/metering/attribution"
	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
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
	Open []usage.Window
	// Pending are closed windows, oldest first, whose sums are fixed and
	// which are delivered in this order. A window stays here until its sink
	// acknowledged it.
	Pending []usage.Window
}

// Store keeps the checkpoint between processes.
type Store interface {
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
	Start time.Time `json:"start"`
	// End is set only when the window is not Window long: a pending
	// window closed before --metering-window changed.
	End   *time.Time              `json:"end,omitempty"`
	Usage map[string]*usage.Usage `json:"usage"`
	// Attribution holds, per namespace, the attribution of its usage;
	// namespaces without one were counted before attribution.
	Attribution map[string]*attribution.Attribution `json:"attribution,omitempty"`
}

// Encode renders cp as gzipped JSON. Floats survive the round trip
// exactly (encoding/json writes the shortest form that parses back to the
// same float64), which is what makes a redelivered window identical.
func Encode(cp *Checkpoint) ([]byte, error) {
	// encoding/json fails on +Inf and NaN only after it has written part
	// of the checkpoint; refuse anything Decode would refuse,
	// with a message that says which namespace.
	if err := checkWindows("open", cp.Open, 0); err != nil {
		return nil, fmt.Errorf("refusing to save the metering checkpoint: %w", err)
	}
	if err := checkWindows("pending", cp.Pending, 0); err != nil {
		return nil, fmt.Errorf("refusing to save the metering checkpoint: %w", err)
	}
	enc := encodedCheckpoint{
		Version:  checkpointVersion,
		Window:   cp.Window.String(),
		LastPass: cp.LastPass.UTC(),
		Open:     encodeWindows(cp.Open, cp.Window),
		Pending:  encodeWindows(cp.Pending, cp.Window),
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

func encodeWindows(windows []usage.Window, length time.Duration) []encodedWindow {
	out := make([]encodedWindow, 0, len(windows))
	for _, w := range windows {
		e := encodedWindow{Start: w.Start.UTC(), Usage: w.Usage}
		for ns, u := range w.Usage {
			if u.Attribution != nil {
				if e.Attribution == nil {
					e.Attribution = make(map[string]*attribution.Attribution, len(w.Usage))
				}
				e.Attribution[ns] = u.Attribution
			}
		}
		if !w.End.Equal(w.Start.Add(length)) {
			end := w.End.UTC()
			e.End = &end
		}
		out = append(out, e)
	}
	return out
}

// MaxBytes bounds the decompressed checkpoint: 64 MiB of JSON,
// about 250,000 namespace-windows (twice what the default 8 ConfigMaps
// hold compressed), well inside the chart's 256Mi memory limit for
// metering. The gzipped parts of a checkpoint may inflate a
// thousandfold (a ConfigMap of zeros), so decompression stops there.
const MaxBytes = 64 << 20

// ErrTooLarge is returned for a checkpoint that inflates to more
// than MaxBytes.
var ErrTooLarge = fmt.Errorf("the metering checkpoint inflates to more than %d MiB; it is refused (move it away to start without a checkpoint)", MaxBytes>>20)

// readAtMost reads r to its end into a buffer that never grows beyond
// limit+1 bytes, and fails with ErrTooLarge when r holds more
// than limit.
func readAtMost(r io.Reader, limit int) ([]byte, error) {
	buf := make([]byte, 0, min(512<<10, limit+1))
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return nil, ErrTooLarge
			}
			buf = slices.Grow(buf, min(2*cap(buf), limit+1)-len(buf))[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case errors.Is(err, io.EOF):
			if len(buf) > limit {
				return nil, ErrTooLarge
			}
			return buf, nil
		case err != nil:
			return nil, err
		}
	}
}

// Decode reads what Encode wrote.
func Decode(data []byte) (*Checkpoint, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decompressing the metering checkpoint: %w", err)
	}
	raw, err := readAtMost(zr, MaxBytes)
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
	if err := checkWindows("open", cp.Open, window); err != nil {
		return nil, fmt.Errorf("the metering checkpoint is corrupt: %w", err)
	}
	if err := checkWindows("pending", cp.Pending, 0); err != nil {
		return nil, fmt.Errorf("the metering checkpoint is corrupt: %w", err)
	}
	return cp, nil
}

func decodeWindows(windows []encodedWindow, length time.Duration) []usage.Window {
	out := make([]usage.Window, 0, len(windows))
	for _, w := range windows {
		byNS := make(map[string]*usage.Usage, len(w.Usage))
		for ns, u := range w.Usage {
			if u != nil {
				u.Attribution = w.Attribution[ns]
				byNS[ns] = u
			}
		}
		end := w.Start.UTC().Add(length)
		if w.End != nil {
			end = w.End.UTC()
		}
		out = append(out, usage.Window{Start: w.Start.UTC(), End: end, Usage: byNS})
	}
	return out
}

// Window starts the aggregator can key by their Unix nanoseconds.
var (
	earliestWindow = time.Unix(0, math.MinInt64).UTC()
	latestWindow   = time.Unix(0, math.MaxInt64).UTC()
)

// checkWindows reports what this package could not have written: a window
// that is not a whole window aligned to its length (length, unless 0), or
// that starts at a time the aggregator cannot hold; windows out of order;
// usage of a namespace without a name, or usage that is negative or not
// finite. Continuing from such windows would merge, reorder or garble
// them.
func checkWindows(kind string, windows []usage.Window, length time.Duration) error {
	for i, w := range windows {
		start := w.Start.Format(time.RFC3339Nano)
		l := w.End.Sub(w.Start)
		if l <= 0 || (length != 0 && l != length) || !usage.WindowStart(w.Start, l).Equal(w.Start) ||
			w.Start.Before(earliestWindow) || w.Start.After(latestWindow) {
			return fmt.Errorf("%s window %s to %s is not an aligned window of %v", kind, start, w.End.Format(time.RFC3339Nano), max(length, l))
		}
		if i > 0 && (!windows[i-1].Start.Before(w.Start) || !windows[i-1].End.Before(w.End)) {
			return fmt.Errorf("%s window %s is not after the one before it", kind, start)
		}
		for ns, u := range w.Usage {
			if ns == "" || !u.Valid() {
				return fmt.Errorf("%s window %s: namespace %q has usage %+v, which is not a namespace's usage", kind, start, ns, *u)
			}
		}
	}
	return nil
}
