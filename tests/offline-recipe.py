#!/usr/bin/python3
"""offline-recipe.py - real data for the recipe tests, without the network.

  offline-recipe.py items REALDATA
      STAC items (one a line) for the three T13SFA crops of September 2024
      (CDSE, EPSG:32613, which come without items): assets red, nir, scl
      with the CDSE scale and offset, the footprint from the B04 file.

  offline-recipe.py recipe IN OUT CATALOG [KEY=JSON | sub:OLD|NEW]...
      IN with its search (area, dates, collections, max_cloud, source)
      replaced by the local CATALOG, then KEY set to the JSON value (null
      removes it) and OLD replaced by NEW in each stage; what changed is
      printed on stderr, so a test says what it ran.
"""
import glob
import json
import os
import sys


def items(realdata):
    from osgeo import gdal, osr
    gdal.UseExceptions()
    for s in sorted(glob.glob(realdata + "/s2/T13SFA_*_cdse_crop")):
        b04 = glob.glob(s + "/*_B04_10m.tif")[0]
        pid = os.path.basename(b04)[:-len("_B04_10m.tif")]
        t = pid.split("_")[2]
        when = "%s-%s-%sT%s:%s:%sZ" % (t[0:4], t[4:6], t[6:8], t[9:11], t[11:13], t[13:15])
        ds = gdal.Open(b04)
        g = ds.GetGeoTransform()
        dst = osr.SpatialReference()
        dst.ImportFromEPSG(4326)
        dst.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        ct = osr.CoordinateTransformation(ds.GetSpatialRef(), dst)
        xs = (g[0], g[0] + ds.RasterXSize * g[1])
        ys = (g[3], g[3] + ds.RasterYSize * g[5])
        ring = [list(ct.TransformPoint(x, y)[:2]) for x, y in
                ((xs[0], ys[0]), (xs[1], ys[0]), (xs[1], ys[1]), (xs[0], ys[1]))]

        def asset(suffix, common, rb):
            return {"href": glob.glob(s + "/*_" + suffix + ".tif")[0],
                    "type": "image/tiff; application=geotiff", "roles": ["data"],
                    "eo:bands": [{"name": suffix[:3], "common_name": common}],
                    "raster:bands": [rb]}
        refl = {"nodata": 0, "scale": 0.0001, "offset": -0.1}
        scl = asset("SCL_20m", "scl", {"nodata": 0})
        scl["roles"] = ["data", "classification"]
        print(json.dumps({
            "type": "Feature", "stac_version": "1.0.0", "id": pid,
            "geometry": {"type": "Polygon", "coordinates": [ring + ring[:1]]},
            "bbox": [min(p[0] for p in ring), min(p[1] for p in ring),
                     max(p[0] for p in ring), max(p[1] for p in ring)],
            "links": [],
            "properties": {"datetime": when, "platform": "sentinel-2", "proj:epsg": 32613},
            "assets": {"red": asset("B04_10m", "red", refl), "nir": asset("B08_10m", "nir", refl),
                       "scl": scl}}))


def recipe(src, dst, catalog, changes):
    import yaml
    r = yaml.safe_load(open(src))
    said = []
    for k in ("area", "dates", "collections", "max_cloud"):
        if k in r:
            said.append("-%s" % k)
            del r[k]
    r["source"] = {"catalog": catalog}
    said.append("source: catalog %s" % os.path.basename(catalog))
    for c in changes:
        if c.startswith("sub:"):
            old, new = c[4:].split("|", 1)
            r["stages"] = [s.replace(old, new) for s in r["stages"]]
            said.append("stages: %s -> %s" % (old, os.path.basename(new)))
            continue
        k, v = c.split("=", 1)
        v = json.loads(v)
        if v is None:
            r.pop(k, None)
            said.append("-%s" % k)
        else:
            r[k] = v
            said.append("%s: %s" % (k, json.dumps(v)))
    yaml.safe_dump(r, open(dst, "w"), sort_keys=False)
    print("# %s offline: %s" % (os.path.basename(src), "; ".join(said)), file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1] == "items":
        items(sys.argv[2])
    else:
        recipe(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
