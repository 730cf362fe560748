//go:build linux

package local

import (
	"os"
	"runtime"
	"testing"
)

func TestReadMemoryOfThisProcess(t *testing.T) {
	t.Parallel()
	m, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.HWM < m.RSS {
		t.Fatalf("memory %+v: want RSS > 0 and HWM >= RSS", m)
	}
	// Touch 64 MiB: while it is alive, the resident set holds it.
	buf := make([]byte, 64<<20)
	for i := range buf {
		if i%4096 == 0 {
			buf[i] = 1
		}
	}
	after, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.RSS < 64<<20 || after.HWM < after.RSS {
		t.Errorf("RSS %d MiB, peak %d MiB after touching 64 MiB", after.RSS>>20, after.HWM>>20)
	}
	runtime.KeepAlive(buf)
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	m, err := parseStatus([]byte("Name:\tworker\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t9\n"))
	if err != nil || m.RSS != 10<<20 || m.HWM != 20<<20 {
		t.Fatalf("got %+v, %v", m, err)
	}
	if _, err := parseStatus([]byte("Name:\tkthreadd\nState:\tS\n")); err == nil {
		t.Error("a status without memory lines was accepted")
	}
	if _, err := parseStatus([]byte("VmHWM:\t 1 MB\nVmRSS:\t 1 kB\n")); err == nil {
		t.Error("a unit other than kB was accepted")
	}
}
