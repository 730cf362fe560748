// Package docket holds the domain of the queue service with no dependency on
// its servers: users and requests, the request types and their payload rules,
// the error codes of the HTTP contract, and the message that travels through
// the broker from the API to the workers.
//
// The service and the worker agree through this package alone: the API
// validates a submission here, writes it through internal/postgres, and
// publishes a Message to Partition(user, P); the worker decodes the Message
// and runs the type's handler.
package docket
