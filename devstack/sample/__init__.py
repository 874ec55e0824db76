"""Sample deliveries of every source system (CRM CDC, orders, POS, support, clickstream, email,
surveys, vendor enrichment, social, postal codes, exchange rates), deterministic by seed, and
the hidden truth (who is who) that identity resolution is scored against. Not part of the
platform: real deliveries arrive in the landing zone from outside."""
