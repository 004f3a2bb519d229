"""Plotting (matplotlib, Agg backend): figures written as PNG and PDF next to the data they show."""
