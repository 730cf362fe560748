package local

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Memory is a process's resident memory, in bytes, from /proc/<pid>/status.
type Memory struct {
	// RSS is the resident set now (VmRSS).
	RSS int64
	// HWM is the peak resident set over the process's life (VmHWM).
	HWM int64
}

// ReadMemory reads a process's resident memory (Linux only: elsewhere
// /proc/<pid>/status does not exist and the error says so).
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	return parseStatus(b)
}

// parseStatus reads VmRSS and VmHWM ("VmRSS:   12345 kB") from a
// /proc/<pid>/status text.
func parseStatus(b []byte) (Memory, error) {
	var m Memory
	var found int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) != 2 || fields[1] != "kB" {
			return Memory{}, fmt.Errorf("read memory: unexpected %s line %q", key, sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("read memory: %s=%q: %w", key, fields[0], err)
		}
		if key == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
		found++
	}
	if found < 2 {
		return Memory{}, fmt.Errorf("read memory: no VmRSS and VmHWM lines (a kernel thread or a zombie?)")
	}
	return m, nil
}
