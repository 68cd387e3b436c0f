package local

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Concurrent callers share fsyncs, and each returns only after an fsync that started after it
// was called.
func TestGroupSync(t *testing.T) {
	var calls atomic.Int64
	var mu sync.Mutex
	var starts, ends []time.Time
	fsyncDir = func(int) error {
		calls.Add(1)
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		time.Sleep(3 * time.Millisecond)
		mu.Lock()
		ends = append(ends, time.Now())
		mu.Unlock()
		return nil
	}
	defer func() { fsyncDir = defaultFsync }()
	var g groupSync
	const n = 64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i%8) * time.Millisecond)
			called := time.Now()
			if err := g.sync(0); err != nil {
				t.Error(err)
			}
			returned := time.Now()
			mu.Lock()
			defer mu.Unlock()
			for k := range ends { // some fsync started after the call and ended before the return
				if !starts[k].Before(called) && !ends[k].After(returned) {
					return
				}
			}
			t.Errorf("caller %d returned without an fsync that started after its call", i)
		}()
	}
	wg.Wait()
	if c := calls.Load(); c >= n || c == 0 {
		t.Fatalf("%d callers, %d fsyncs", n, c)
	}
	t.Logf("%d callers, %d fsyncs", n, calls.Load())
}
