package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"

	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

// File appends to a file. A window the file already holds (delivered
// again after a crash, before the checkpoint said so) is skipped, so the
// file has each window once.
type File struct {
	f *os.File
	// upTo is the end of the last complete window in the file.
	upTo time.Time
	log  logr.Logger
}

// Deliver appends the window with a single write and syncs it, so that a
// crash leaves at most one torn window at the end of the file, which the
// next start repairs.
func (s *File) Deliver(_ context.Context, records []usage.Record) error {
	if end := records[0].WindowEnd; !end.After(s.upTo) {
		s.log.Info("The output file already holds this window; not writing it again",
			"windowStart", records[0].WindowStart, "windowEnd", end, "fileUpTo", s.upTo)
		return nil
	}
	data, err := usage.MarshalJSONLines(records)
	if err != nil {
		return err
	}
	if _, err := s.f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", s.f.Name(), err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", s.f.Name(), err)
	}
	s.upTo = records[0].WindowEnd
	return nil
}

// Close closes the file.
func (s *File) Close() error { return s.f.Close() }

// OpenFile opens (or creates) the output file for appending and repairs a
// torn tail.
func OpenFile(path string, log logr.Logger) (*File, error) {
	f, upTo, err := openFile(path, log)
	if err != nil {
		return nil, err
	}
	return &File{f: f, upTo: upTo, log: log}, nil
}

// UpTo is the end of the last complete window the file holds; zero when it
// holds none.
func (s *File) UpTo() time.Time { return s.upTo }

// openFile opens (or creates) the output file for appending, repairs a torn
// tail and returns the end of the last complete window it holds (zero when
// it holds none).
func openFile(path string, log logr.Logger) (*os.File, time.Time, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("opening the metering output: %w", err)
	}
	resume, err := repair(f, log)
	if err != nil {
		_ = f.Close()
		return nil, time.Time{}, err
	}
	// Make the file's directory entry durable too, in case it was just
	// created.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return f, resume, nil
}

// repair reads the tail of f and truncates a torn tail.
func repair(f *os.File, log logr.Logger) (time.Time, error) {
	info, err := f.Stat()
	if err != nil {
		return time.Time{}, err
	}
	cp, err := readTail(f, info.Size())
	if err != nil {
		return time.Time{}, fmt.Errorf("metering output %s: %w; move it away or repair it by hand", f.Name(), err)
	}
	if dropped := info.Size() - cp.keep; dropped > 0 {
		tail := make([]byte, min(dropped, 200))
		_, _ = f.ReadAt(tail, cp.keep)
		kv := []any{"file", f.Name(), "droppedBytes", dropped, "droppedRecords", cp.droppedRecords,
			"garbledLastLine", cp.garbled, "droppedTailStartsWith", string(tail)}
		if !cp.droppedWindow.IsZero() {
			kv = append(kv, "recomputedWindowStart", cp.droppedWindow.Format(time.RFC3339))
		}
		if !cp.resume.IsZero() {
			kv = append(kv, "keptWindowsUpTo", cp.resume.Format(time.RFC3339))
		}
		log.Info("WARNING: the metering output ends in a torn write (garbled or truncated last line, or an incomplete window); "+
			"truncating it after its last complete window, which keeps every earlier record. The dropped window is recomputed.", kv...)
		if err := f.Truncate(cp.keep); err != nil {
			return time.Time{}, fmt.Errorf("truncating the torn tail of %s: %w", f.Name(), err)
		}
		if err := f.Sync(); err != nil {
			return time.Time{}, fmt.Errorf("syncing %s: %w", f.Name(), err)
		}
	}
	return cp.resume, nil
}

// fileTail is what the tail of the output file says about earlier runs.
type fileTail struct {
	// resume is the end of the last complete window; zero if there is none.
	resume time.Time
	// keep is the length of the file up to and including that window.
	keep int64
	// garbled is set when the last line was garbled or truncated.
	garbled bool
	// droppedRecords are the records of an incomplete last window, which
	// starts at droppedWindow.
	droppedRecords int
	droppedWindow  time.Time
}

// errNeedMore asks for a longer tail of the file.
var errNeedMore = errors.New("need more of the file")

// readTail finds the last complete window in the file. It reads only
// the tail of the file, as long a tail as the last window needs.
func readTail(r io.ReaderAt, size int64) (fileTail, error) { return readTailFrom(r, size, 64<<10) }

// readTailFrom is readTail with a first read of n bytes.
func readTailFrom(r io.ReaderAt, size, n int64) (fileTail, error) {
	for ; ; n *= 4 {
		off := max(0, size-n)
		buf := make([]byte, size-off)
		if _, err := r.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			return fileTail{}, err
		}
		cp, err := analyzeTail(buf, off)
		if errors.Is(err, errNeedMore) && off > 0 {
			continue
		}
		return cp, err
	}
}

// line is one line of the file; end includes its newline.
type line struct {
	start, end int64
	text       []byte
	terminated bool
}

// analyzeTail interprets buf, the file from offset base to its end. A tail
// can be torn in one way only, since every window is appended with one
// write and synced before the next: the last window may be incomplete, and
// its last line cut short or garbled. Anything else is corruption, which is
// reported rather than truncated away.
func analyzeTail(buf []byte, base int64) (fileTail, error) {
	var lines []line
	pos := 0
	if base > 0 {
		// The first line may have been cut by the start of the tail.
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return fileTail{}, errNeedMore
		}
		pos = i + 1
	}
	for pos < len(buf) {
		l := line{start: base + int64(pos)}
		if i := bytes.IndexByte(buf[pos:], '\n'); i >= 0 {
			l.text, l.terminated = buf[pos:pos+i], true
			pos += i + 1
		} else {
			l.text = buf[pos:]
			pos = len(buf)
		}
		l.end = base + int64(pos)
		lines = append(lines, l)
	}
	// keepBefore is where line i starts: all lines before it are kept.
	keepBefore := func(i int) int64 {
		if i < len(lines) {
			return lines[i].start
		}
		return base + int64(len(buf))
	}

	cp := fileTail{}
	i := len(lines) - 1
	if i >= 0 {
		if _, ok := parseLine(lines[i]); !ok {
			cp.garbled = true
			i--
		}
	}
	for dropped := false; ; dropped = true {
		if i < 0 {
			if base > 0 {
				return cp, errNeedMore
			}
			cp.keep = keepBefore(0)
			return cp, nil
		}
		last, ok := parseLine(lines[i])
		if !ok {
			return cp, fmt.Errorf("garbled record at byte %d, before the last one", lines[i].start)
		}
		j, garbledBefore := i, false
		for ; j >= 0; j-- {
			r, ok := parseLine(lines[j])
			if !ok {
				garbledBefore = true
				break
			}
			if !r.WindowStart.Equal(last.WindowStart) || !r.WindowEnd.Equal(last.WindowEnd) {
				break
			}
			if r.WindowRecords != last.WindowRecords {
				// Counted together, they would pass for a torn window and
				// take the complete one they follow with them.
				return cp, fmt.Errorf("records of window %s at bytes %d and %d disagree on how many records it has (%d and %d)",
					last.WindowStart.Format(time.RFC3339), lines[j].start, lines[i].start, r.WindowRecords, last.WindowRecords)
			}
		}
		if j < 0 && base > 0 {
			return cp, errNeedMore
		}
		n := i - j
		switch {
		case n == last.WindowRecords:
			// Complete; what comes before it does not matter.
			cp.resume = last.WindowEnd.UTC()
			cp.keep = lines[i].end
			return cp, nil
		case n > last.WindowRecords:
			return cp, fmt.Errorf("window %s has %d records at byte %d but says it has %d",
				last.WindowStart.Format(time.RFC3339), n, lines[j+1].start, last.WindowRecords)
		case garbledBefore:
			return cp, fmt.Errorf("garbled record at byte %d, inside the last window", lines[j].start)
		case dropped:
			// Only the last window can be torn; the one before was synced
			// before it was written.
			return cp, fmt.Errorf("window %s at byte %d has %d of its %d records, and is not the last window",
				last.WindowStart.Format(time.RFC3339), lines[j+1].start, n, last.WindowRecords)
		}
		cp.droppedRecords, cp.droppedWindow = n, last.WindowStart.UTC()
		i = j
	}
}

// parseLine decodes a complete line that holds a valid record.
func parseLine(l line) (usage.Record, bool) {
	var r usage.Record
	if !l.terminated || json.Unmarshal(l.text, &r) != nil || !r.Valid() {
		return usage.Record{}, false
	}
	return r, true
}
