package benchmark

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"time"
)

// tcpTimeWait is the kernel's code for TIME_WAIT in /proc/net/tcp.
const tcpTimeWait = "06"

// timeWaitSockets counts the TCP sockets in TIME_WAIT whose local or remote
// port is port, from /proc/net/tcp and /proc/net/tcp6 (Linux; elsewhere
// it reads 0). Loopback connections to a port of this machine show up
// there whichever side closed first.
func timeWaitSockets(port int) int {
	if port == 0 {
		return 0
	}
	n := 0
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		n += countTimeWait(file, port)
	}
	return n
}

func countTimeWait(file string, port int) int {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		// sl local_address rem_address st ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != tcpTimeWait {
			continue
		}
		if hexPort(fields[1]) == port || hexPort(fields[2]) == port {
			n++
		}
	}
	return n
}

// hexPort reads the port of an address such as 0100007F:1F40.
func hexPort(addr string) int {
	_, p, ok := strings.Cut(addr, ":")
	if !ok {
		return -1
	}
	v, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return -1
	}
	return int(v)
}

// runQueueDelay is the time this process's threads have spent runnable
// but waiting for a CPU, from /proc/self/task/*/schedstat (Linux; 0
// elsewhere). On a shared machine it shows how much of a latency is the
// wait for a processor rather than the work.
func runQueueDelay() time.Duration {
	_, wait := schedStats()
	return wait
}

// cpuTime is the time this process's threads have spent on a CPU, from the
// same files (0 elsewhere).
func cpuTime() time.Duration {
	run, _ := schedStats()
	return run
}

// schedStats sums the first two fields of every thread's schedstat: the
// time on a CPU and the time runnable but waiting for one.
func schedStats() (run, wait time.Duration) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, 0
	}
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		r, err1 := strconv.ParseInt(f[0], 10, 64)
		w, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 == nil && err2 == nil {
			run += time.Duration(r)
			wait += time.Duration(w)
		}
	}
	return run, wait
}
