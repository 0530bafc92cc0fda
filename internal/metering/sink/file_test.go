package sink

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"

	"github.com/meshcloud/meshstack-operator/internal/metering/internal/meteringtest"
	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

// windowBytes is the batch of a window starting hour hours after t0 with n
// records.
func windowBytes(t testing.TB, hour, n int) []byte {
	t.Helper()
	byNS := map[string]*usage.Usage{}
	for i := range n {
		byNS[fmt.Sprintf("cust%d-proj", i)] = &usage.Usage{PodSeconds: float64(i), Samples: 1}
	}
	start := t0.Add(time.Duration(hour) * time.Hour)
	data, err := usage.MarshalJSONLines(usage.WindowRecords("", start, start.Add(time.Hour), byNS))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// firstLines is the first n lines of a batch.
func firstLines(b []byte, n int) []byte {
	end := 0
	for range n {
		end += bytes.IndexByte(b[end:], '\n') + 1
	}
	return b[:end]
}

func TestReadCheckpoint(t *testing.T) {
	w0, w1, w2 := windowBytes(t, 0, 2), windowBytes(t, 1, 3), windowBytes(t, 2, 3)
	big := windowBytes(t, 3, 500) // longer than the first tail read
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	end := func(hours int) time.Time { return t0.Add(time.Duration(hours) * time.Hour) }

	tests := []struct {
		name    string
		file    []byte
		want    fileTail
		wantErr string
	}{
		{name: "empty file", file: nil, want: fileTail{}},
		{name: "complete windows", file: cat(w0, w1),
			want: fileTail{resume: end(2), keep: int64(len(w0) + len(w1))}},
		{name: "a last window longer than the first tail read", file: cat(w0, big),
			want: fileTail{resume: end(4), keep: int64(len(w0) + len(big))}},
		{name: "garbled last line", file: cat(w0, w1, []byte(`{"id":"x","namespace":`+"\n")),
			want: fileTail{resume: end(2), keep: int64(len(w0) + len(w1)), garbled: true}},
		{name: "truncated last line, with no newline", file: cat(w0, w1, w2[:len(w2)-10]),
			want: fileTail{resume: end(2), keep: int64(len(w0) + len(w1)), garbled: true, droppedRecords: 2, droppedWindow: end(2)}},
		{name: "a complete last line without its newline is truncated too", file: cat(w0, w1, w2[:len(w2)-1]),
			want: fileTail{resume: end(2), keep: int64(len(w0) + len(w1)), garbled: true, droppedRecords: 2, droppedWindow: end(2)}},
		{name: "incomplete last window", file: cat(w0, w1, firstLines(w2, 1)),
			want: fileTail{resume: end(2), keep: int64(len(w0) + len(w1)), droppedRecords: 1, droppedWindow: end(2)}},
		{name: "zeros after a crash", file: cat(w0, w1, make([]byte, 300)),
			want: fileTail{resume: end(2), keep: int64(len(w0) + len(w1)), garbled: true}},
		{name: "only a garbled line", file: []byte("not json"),
			want: fileTail{garbled: true}},
		{name: "only an incomplete window", file: firstLines(w1, 2),
			want: fileTail{droppedRecords: 2, droppedWindow: end(1)}},
		{name: "garbage before the last complete window is not looked at", file: cat(w0, []byte("junk\n"), w1),
			want: fileTail{resume: end(2), keep: int64(len(w0) + 5 + len(w1))}},
		{name: "two garbled lines are corruption, not a torn write", file: cat(w0, []byte("junk\n"), []byte("more junk")),
			wantErr: "garbled record"},
		{name: "an incomplete window before an incomplete one is corruption", file: cat(firstLines(w1, 2), firstLines(w2, 1)),
			wantErr: "is not the last window"},
		{name: "a window with more records than it says is corruption", file: cat(w1, firstLines(w1, 1)),
			wantErr: "has 4 records"},
		{name: "records of one window that disagree on its size are corruption, not a torn window after a complete one",
			file:    cat(w0, w1, bytes.Replace(firstLines(w1, 1), []byte(`"windowRecords":3`), []byte(`"windowRecords":5`), 1)),
			wantErr: "disagree on how many records it has (3 and 5)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readTail(bytes.NewReader(tt.file), int64(len(tt.file)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(fileTail{})); diff != "" {
				t.Errorf("checkpoint (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenFileRepairs(t *testing.T) {
	w0, w1 := windowBytes(t, 0, 2), windowBytes(t, 1, 3)
	tests := []struct {
		name       string
		content    []byte // nil: no file
		wantResume time.Time
		wantFile   []byte
		wantLog    string
	}{
		{name: "missing file is created", wantResume: time.Time{}, wantFile: []byte{}},
		{name: "empty file", content: []byte{}, wantResume: time.Time{}, wantFile: []byte{}},
		{name: "intact file is left alone", content: append(bytes.Clone(w0), w1...), wantResume: t0.Add(2 * time.Hour), wantFile: append(bytes.Clone(w0), w1...)},
		{name: "garbled last line is cut and logged", content: append(bytes.Clone(w0), `{"id":"abc","nam`...),
			wantResume: t0.Add(time.Hour), wantFile: w0, wantLog: `"droppedBytes"=16`},
		{name: "torn window is cut and logged", content: append(bytes.Clone(w0), w1[:len(w1)/2]...),
			wantResume: t0.Add(time.Hour), wantFile: w0, wantLog: `"recomputedWindowStart"="2026-03-01T11:00:00Z"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "usage.jsonl")
			if tt.content != nil {
				if err := os.WriteFile(path, tt.content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var logs meteringtest.Log
			f, resume, err := openFile(path, logs.Logger())
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close() //nolint:errcheck // test
			if !resume.Equal(tt.wantResume) {
				t.Errorf("resume = %v, want %v", resume, tt.wantResume)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(tt.wantFile), string(got)); diff != "" {
				t.Errorf("file after repair (-want +got):\n%s", diff)
			}
			if tt.wantLog == "" && len(logs.Lines()) > 0 {
				t.Errorf("unexpected log: %v", logs.Lines())
			}
			if tt.wantLog != "" && (!logs.Contains(tt.wantLog) || !logs.Contains("keeps every earlier record")) {
				t.Errorf("log %v lacks %q", logs.Lines(), tt.wantLog)
			}
		})
	}
}

func TestOpenFileRefusesCorruption(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.jsonl")
	content := []byte("first junk\nsecond junk\n")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := openFile(path, logr.Discard()); err == nil || !strings.Contains(err.Error(), "repair it by hand") {
		t.Fatalf("got %v, want a refusal", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
		t.Errorf("a corrupt file was changed: %q", got)
	}
}
