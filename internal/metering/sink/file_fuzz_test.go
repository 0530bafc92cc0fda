package sink

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// lastLine is the last line of b, which ends in a newline.
func lastLine(b []byte) []byte {
	return b[bytes.LastIndexByte(b[:len(b)-1], '\n')+1:]
}

// FuzzReadTail puts complete windows, as the meter writes them, in front
// of fuzzed bytes and reads the tail of that file the way a starting meter
// does. Two invariants:
//
//   - A torn write (the next window cut anywhere, perhaps followed by bytes
//     that never got their newline, such as the zeros some filesystems
//     leave after a crash) is always repaired, to exactly the complete
//     windows: nothing of them is lost, nothing of the torn one is kept.
//   - Anything else after the complete windows either is refused (an
//     error: the meter does not start and nothing is truncated) or keeps
//     every complete window: keep never cuts into them. (A copy of an
//     older complete window at the end is kept and resumes from there:
//     duplicates, not a loss.)
//
// Besides, reading the tail from a short first read gives what reading
// the whole file gives, and the repaired file reads as intact.
func FuzzReadTail(f *testing.F) {
	w0, w1 := windowBytes(f, 0, 2), windowBytes(f, 1, 3)
	sameWindowMoreRecords := bytes.Replace(lastLine(w1), []byte(`"windowRecords":3`), []byte(`"windowRecords":5`), 1)
	sameWindowFewerRecords := bytes.Replace(lastLine(w1), []byte(`"windowRecords":3`), []byte(`"windowRecords":1`), 1)
	for _, seed := range []struct {
		windows   uint8
		counts    []byte
		tornAt    uint16
		junk      []byte
		firstRead uint16
	}{
		{2, []byte{1, 2, 2}, 0, nil, 4096},
		{2, []byte{1, 2, 2}, 150, nil, 64},
		{2, []byte{1, 2, 2}, 400, make([]byte, 300), 10},
		{0, []byte{3}, 200, []byte("not json"), 0},
		{1, []byte{0, 3}, 9999, []byte("junk\n"), 1},
		{2, []byte{1, 2}, 0, lastLine(w1), 100},
		{2, []byte{1, 2}, 0, sameWindowMoreRecords, 100},
		{2, []byte{1, 2}, 0, sameWindowFewerRecords, 100},
		{2, []byte{1, 2}, 0, append(bytes.Clone(sameWindowMoreRecords), "{\"id\":"...), 100},
		{2, []byte{1, 2}, 0, append(bytes.Clone(w0), w1[:40]...), 30},
		{4, []byte{3, 3, 3, 3, 3}, 300, []byte("\n\n"), 2},
		{1, []byte{0}, 0, []byte(`{"id":"x","namespace":"a-b","windowStart":"2026-03-01T11:00:00Z","windowEnd":"2026-03-01T11:00:00Z","windowRecords":1}` + "\n"), 7},
	} {
		f.Add(seed.windows, seed.counts, seed.tornAt, seed.junk, seed.firstRead)
	}
	f.Fuzz(func(t *testing.T, windows uint8, counts []byte, tornAt uint16, junk []byte, firstRead uint16) {
		count := func(i int) int {
			if i < len(counts) {
				return int(counts[i]%4) + 1
			}
			return 2
		}
		k := int(windows % 5)
		complete := make([]byte, 0, 4<<10)
		for i := range k {
			complete = append(complete, windowBytes(t, i, count(i))...)
		}
		var completeEnd time.Time // zero: no complete window
		if k > 0 {
			completeEnd = t0.Add(time.Duration(k) * time.Hour)
		}
		next := windowBytes(t, k, count(k))

		m := int(tornAt) % (len(next) + 1)
		torn := append(bytes.Clone(next[:m]), bytes.ReplaceAll(junk, []byte("\n"), nil)...)
		got, err := readTailBothWays(t, append(bytes.Clone(complete), torn...), firstRead)
		if err != nil {
			t.Fatalf("a torn write after %d complete windows (%d of %d bytes of the next, then %q) is refused: %v", k, m, len(next), junk, err)
		}
		want := fileTail{resume: completeEnd, keep: int64(len(complete)), garbled: len(torn) > 0 && torn[len(torn)-1] != '\n'}
		if m == len(next) {
			want.resume, want.keep = t0.Add(time.Duration(k+1)*time.Hour), int64(len(complete)+len(next))
		} else if lines := bytes.Count(next[:m], []byte("\n")); lines > 0 {
			want.droppedRecords, want.droppedWindow = lines, t0.Add(time.Duration(k)*time.Hour)
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(fileTail{})); diff != "" {
			t.Fatalf("torn write after %d complete windows (%d of %d bytes of the next, then %q) (-want +got):\n%s", k, m, len(next), junk, diff)
		}

		file := append(bytes.Clone(complete), junk...)
		got, err = readTailBothWays(t, file, firstRead)
		if err != nil {
			return // refused: repair truncates nothing
		}
		if got.keep < int64(len(complete)) || got.keep > int64(len(file)) || (got.keep > 0 && file[got.keep-1] != '\n') {
			t.Fatalf("%d complete windows (%d bytes) then %q: keep %d cuts into the complete windows or a line", k, len(complete), junk, got.keep)
		}
	})
}

// readTailBothWays analyzes file whole and as readTail does from a first
// read of firstRead+1 bytes, requires the same answer, and that the file
// truncated to keep reads as intact, with the same resume.
func readTailBothWays(t *testing.T, file []byte, firstRead uint16) (fileTail, error) {
	t.Helper()
	whole, err := analyzeTail(file, 0)
	tail, tailErr := readTailFrom(bytes.NewReader(file), int64(len(file)), int64(firstRead)+1)
	if (err == nil) != (tailErr == nil) || (err != nil && err.Error() != tailErr.Error()) {
		t.Fatalf("the whole file gives error %v, its tail from %d bytes %v", err, firstRead+1, tailErr)
	}
	if err != nil {
		return fileTail{}, err
	}
	if diff := cmp.Diff(whole, tail, cmp.AllowUnexported(fileTail{})); diff != "" {
		t.Fatalf("the whole file and its tail from %d bytes disagree (-whole +tail):\n%s", firstRead+1, diff)
	}
	repaired, err := analyzeTail(file[:whole.keep], 0)
	if diff := cmp.Diff(fileTail{resume: whole.resume, keep: whole.keep}, repaired, cmp.AllowUnexported(fileTail{})); err != nil || diff != "" {
		t.Fatalf("the repaired file does not read as intact (error %v; -want +got):\n%s", err, diff)
	}
	return whole, nil
}
