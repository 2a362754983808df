"""The district's intake: from Kafka records to decided cases, one transaction per batch."""
