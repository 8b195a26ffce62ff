"""The sentinel: turns serving signals into rollback decisions the promoter makes."""
