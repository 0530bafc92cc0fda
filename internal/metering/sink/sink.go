// Package sink delivers the usage records of closed windows to the
// --metering-output: stdout (or any stream), a file it appends to, or an
// HTTP(S) receiver, with the receiver's TLS and bearer token. It also checks
// and redacts --metering-output values. It does not decide what is
// delivered or when: the meter hands it one closed window at a time, and
// keeps the window pending in the checkpoint until Deliver returns.
package sink

import (
	"context"

	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

// Sink delivers the records of closed windows, one window at a time, in
// window order. The records of one window are never empty, are sorted by
// namespace and share WindowStart and WindowEnd; they are derived from the
// checkpoint, so a window delivered again (after a crash or a change of
// leader) has the same records with the same ids and values.
type Sink interface {
	// Deliver blocks until the window's records are delivered, retrying
	// what can be retried. It returns an error only when ctx is done or
	// when delivery cannot succeed in this process (the meter then stops
	// and the window stays pending in the checkpoint).
	Deliver(ctx context.Context, records []usage.Record) error
	// Close releases what the sink holds (a file, idle connections, a
	// certificate watcher).
	Close() error
}

var (
	_ Sink = &Writer{}
	_ Sink = &File{}
	_ Sink = &HTTP{}
)
