package confluent

// SerializationErr is Confluent's error code for a value off the schema, for the external tests.
const SerializationErr = v3SerializationErr
