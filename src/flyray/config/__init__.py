"""Configuration values that check themselves: names, quantities, resources, pod templates."""
