package framework

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"time"

	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

// ParseRecords parses the complete lines of a JSON Lines output of usage
// records. A last line without its newline is left out: the meter may be
// writing it, or was killed while it did.
func ParseRecords(data []byte) ([]usage.Record, error) {
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	var records []usage.Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r usage.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("line %q: %w", sc.Text(), err)
		}
		records = append(records, r)
	}
	return records, sc.Err()
}

// ReadRecordFiles parses the files in order; a file that does not exist
// (yet) holds no records.
func ReadRecordFiles(paths ...string) ([]usage.Record, error) {
	var all []usage.Record
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		records, err := ParseRecords(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		all = append(all, records...)
	}
	return all, nil
}

// RecordsIn are the records of one namespace, in their order.
func RecordsIn(records []usage.Record, namespace string) []usage.Record {
	var out []usage.Record
	for _, r := range records {
		if r.Namespace == namespace {
			out = append(out, r)
		}
	}
	return out
}

// Deduplicate keeps the first record of each id, sorted by window start,
// and fails when a later record with the same id differs from it: the
// meter's guarantee is at least once, with identical duplicates only. It
// returns how many duplicates it dropped.
func Deduplicate(records []usage.Record) ([]usage.Record, int, error) {
	seen := map[string]usage.Record{}
	var out []usage.Record
	for _, r := range records {
		if first, ok := seen[r.ID]; ok {
			if !reflect.DeepEqual(r, first) {
				return nil, 0, fmt.Errorf("a duplicate of record %s differs:\n first %+v\n later %+v", r.ID, first, r)
			}
			continue
		}
		seen[r.ID] = r
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b usage.Record) int { return a.WindowStart.Compare(b.WindowStart) })
	return out, len(records) - len(out), nil
}

// CheckContiguous checks that records (of one namespace, sorted) cover
// adjacent windows of the given length, aligned to it, with none missing
// and none twice, each with the id the meter derives from its namespace and
// window.
func CheckContiguous(records []usage.Record, window time.Duration) error {
	if len(records) == 0 {
		return fmt.Errorf("no records")
	}
	for i, r := range records {
		switch {
		case r.WindowEnd.Sub(r.WindowStart) != window:
			return fmt.Errorf("window %s–%s of %s is not %s long", r.WindowStart, r.WindowEnd, r.Namespace, window)
		case r.WindowStart.UnixNano()%int64(window) != 0:
			return fmt.Errorf("window %s of %s is not aligned to %s", r.WindowStart, r.Namespace, window)
		case r.ID != usage.RecordID(r.Cluster, r.Namespace, r.WindowStart, r.WindowEnd):
			return fmt.Errorf("record %s of %s has the id of another namespace or window", r.ID, r.Namespace)
		case i > 0 && !r.WindowStart.Equal(records[i-1].WindowEnd):
			return fmt.Errorf("gap or overlap in %s: window %s follows one that ends %s", r.Namespace, r.WindowStart, records[i-1].WindowEnd)
		}
	}
	return nil
}
