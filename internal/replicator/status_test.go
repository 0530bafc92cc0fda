package replicator

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/events"
)

// However many problems a pass finds, the Ready message stays within the
// bound (so the status stays valid) and the Event's note within its own.
func TestReadyMessageIsBounded(t *testing.T) {
	p := project(nil)
	out := &outcome{}
	for i := range 32 * 1000 {
		out.block(ReasonUnknownRole, "role %q of user %d is not mapped ✓", strings.Repeat("r", 63), i)
	}
	recorder := events.NewFakeRecorder(1)
	(&MeshProjectReconciler{Recorder: recorder}).setStatus(p, out, nil)

	ready := meta.FindStatusCondition(p.Status.Conditions, ConditionReady)
	if ready == nil || ready.Reason != ReasonUnknownRole {
		t.Fatalf("Ready = %+v, want reason %s", ready, ReasonUnknownRole)
	}
	if len(ready.Message) > maxConditionMessage || !utf8.ValidString(ready.Message) {
		t.Errorf("message of %d bytes (valid UTF-8: %v), want at most %d", len(ready.Message), utf8.ValidString(ready.Message), maxConditionMessage)
	}
	if !regexp.MustCompile(`; and [0-9]+ more$`).MatchString(ready.Message) {
		t.Errorf("message does not say how many problems were left out: …%s", ready.Message[len(ready.Message)-60:])
	}
	if note := <-recorder.Events; len(note) > maxNoteLength+100 {
		t.Errorf("event of %d bytes, want the note within %d", len(note), maxNoteLength)
	}
}

func TestJoinCappedCutsOneProblemTooLongAlone(t *testing.T) {
	long := strings.Repeat("x", 10000)
	if got := joinCapped([]string{long}, 100); len(got) > 100 || !strings.HasPrefix(got, "xxx") {
		t.Errorf("joinCapped(one long) = %q, want its start within 100 bytes", got)
	}
	if got := joinCapped([]string{long, "b"}, 100); len(got) > 100 || !strings.HasSuffix(got, "; and 1 more") {
		t.Errorf("joinCapped(long, b) = %q, want its start and how many more", got)
	}
}

func TestTruncated(t *testing.T) {
	for _, tc := range []struct {
		in    string
		limit int
	}{{"short", 100}, {strings.Repeat("é", 100), 51}, {strings.Repeat("x", 1000), 40}} {
		got := truncated(tc.in, tc.limit)
		if len(got) > tc.limit || !utf8.ValidString(got) {
			t.Errorf("truncated(%d bytes, %d) = %q: %d bytes", len(tc.in), tc.limit, got, len(got))
		}
		if len(tc.in) <= tc.limit && got != tc.in {
			t.Errorf("truncated(%q) = %q, want it unchanged", tc.in, got)
		}
	}
}
