package dynamolocal

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

// Ports Start picks from: below Linux's default ephemeral range
// (32768–60999), where the kernel does not place outgoing connections, and
// above the usual fixed service ports.
const (
	minPort = 20000
	maxPort = 32000
)

// candidatePort returns a random port of the range that is free now (a
// listener could bind it on every interface and on loopback). Another
// process may still take it before DynamoDB Local does; Start then tries
// another.
func candidatePort() (int, error) {
	for range 100 {
		port := minPort + rand.IntN(maxPort-minPort)
		if free(port) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port between %d and %d", minPort, maxPort)
}

func free(port int) bool {
	for _, host := range []string{"", "127.0.0.1"} {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}
