# Totals per region of every CSV file in data/ (the workflow folder is visible read-only).
import csv
import glob

totals = {}
for path in sorted(glob.glob("data/*.csv")):
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            totals[row["region"]] = totals.get(row["region"], 0) + int(row["amount"])
print("read", len(totals), "regions")
result = totals
