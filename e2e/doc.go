// Package e2e is Stampede's end-to-end suite. It drives the HTTP API
// through the public Go client, so it runs unchanged against
//
//   - an in-process local server (the default, part of `go test ./...` and
//     `make test`): STAMPEDE_API_URL unset;
//   - a LocalStack or real deployment: `make e2e STAMPEDE_API_URL=https://…`.
//
// Requests are SigV4-signed when STAMPEDE_API_URL is not a loopback address
// (credentials and region from the AWS SDK's default chain); STAMPEDE_SIGV4=1
// or 0 forces signing on or off. Every run works in a domain of its own
// (e2e-<time>-<random>, project STAMPEDE_E2E_PROJECT or "e2e") and deletes
// the entries and releases the reservations it made, so it can run against
// a shared deployment.
package e2e
