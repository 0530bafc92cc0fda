package sink

import (
	"context"
	"io"

	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

// Writer writes to a stream, such as stdout.
type Writer struct{ w io.Writer }

// NewWriter is a sink that writes each window to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Deliver writes the window's records to the stream as JSON Lines.
func (s *Writer) Deliver(_ context.Context, records []usage.Record) error {
	data, err := usage.MarshalJSONLines(records)
	if err != nil {
		return err
	}
	_, err = s.w.Write(data)
	return err
}

// Close does nothing: the stream is not the sink's to close.
func (s *Writer) Close() error { return nil }
