package dynamolocal

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// listens reports whether process pid has a TCP socket listening on port:
// one of its file descriptors is a socket whose inode /proc/net/tcp{,6}
// lists in state LISTEN on that port.
func listens(pid, port int) (bool, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		// The process is gone (or /proc unreadable): not listening; the
		// caller learns why from the process's exit.
		return false, nil
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	for _, table := range []string{"tcp", "tcp6"} {
		ok, err := listedListening(fmt.Sprintf("/proc/%d/net/%s", pid, table), port, inodes)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// listedListening scans one /proc/net/tcp table: "sl local_address
// rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …",
// addresses as HEXIP:HEXPORT and state 0A for LISTEN.
func listedListening(path string, port int, inodes map[string]bool) (bool, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if p, err := strconv.ParseUint(hexPort, 16, 16); ok && err == nil && int(p) == port {
			return true, nil
		}
	}
	return false, sc.Err()
}
