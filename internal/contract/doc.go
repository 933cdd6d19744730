// Package contract holds the facts Stampede's parts must agree on and that
// would otherwise be written down in several places: error codes and their
// HTTP statuses and Lambda error types, the API's routes and which function
// serves each, the functions' environment variables, the table's key and
// TTL attribute names, and the names of the metrics the functions emit.
//
// It imports only the standard library, so that every part can depend on
// it: the service core, the client, and (through contract.json, which a
// test keeps equal to this package) the CDK app in infra/, its own module.
// Where a part still keeps its own copy of a fact, a drift test ties that
// copy to this package.
package contract
