"""Task plugins shipped with flyray; third-party ones register the same way."""
