import Foundation
import LayerSplitData
import XCTest
import Yams

/// Parsing the `data:` section: the schema, path resolution and precise errors.
final class DataSpecTests: XCTestCase {
    func parse(_ yaml: String, file: String = "space.yaml", base: String = "/base") throws -> DataSpec {
        try DataSpec.parse(yaml: yaml, file: file, baseDirectory: base)
    }

    func testFullSchemaParses() throws {
        let spec = try parse("""
            study: ignored-by-the-data-parser
            data:
              normalize: unit
              validation: 0.2
              seed: 9
              tasks:
                - name: fashion
                  source: {idx: /usr/share/datasets/fashion-mnist}
                  subsample: 2000
                  classes: 10
                - name: digits
                  source: {idx: ../shared/data/opencv-digits}
                - name: rot
                  source: {idx: ~/data/x}
                  transform: [{rotate: 90}, invert, {flip: horizontal}, {contrast: 0.5}, {noise: {std: 0.2, seed: 4}}, {permute: 3}]
                - name: coarse
                  source: {hdf5: sets/file.h5, x: /images, y: /labels, test_x: /t/x, test_y: /t/y}
                  labels: {groups: [[0, 2, 4, 6], [1, 3], [5, 7, 9], [8]]}
                  subsample: {train: 100, validation: 50, test: 70}
                - name: parity
                  source: {hdf5: /abs/file.h5}
                  labels: parity
                  transform: {noise: 0.3}
            """)
        XCTAssertEqual(spec.normalize, .unit)
        XCTAssertEqual(spec.validation, 0.2)
        XCTAssertEqual(spec.seed, 9)
        XCTAssertNil(spec.synthetic)
        XCTAssertEqual(spec.tasks.map(\.name), ["fashion", "digits", "rot", "coarse", "parity"])
        XCTAssertEqual(spec.tasks[0].source, .idx(folder: "/usr/share/datasets/fashion-mnist"))
        XCTAssertEqual(spec.tasks[0].subsample, Subsample(train: 2000))
        XCTAssertEqual(spec.tasks[0].classes, 10)
        // Relative paths resolve against the file's folder; ~ is the home folder.
        XCTAssertEqual(spec.tasks[1].source, .idx(folder: "/shared/data/opencv-digits"))
        XCTAssertEqual(spec.tasks[2].source.path, NSHomeDirectory() + "/data/x")
        XCTAssertEqual(spec.tasks[2].transforms, [.rotate(degrees: 90), .invert, .flip(horizontal: true), .contrast(factor: 0.5),
                                                  .noise(std: 0.2, seed: 4), .permute(seed: 3)])
        XCTAssertEqual(spec.tasks[3].source, .hdf5(file: "/base/sets/file.h5", x: "/images", y: "/labels", testX: "/t/x", testY: "/t/y", testFraction: 0.2))
        XCTAssertEqual(spec.tasks[3].labels, .groups([[0, 2, 4, 6], [1, 3], [5, 7, 9], [8]]))
        XCTAssertEqual(spec.tasks[3].subsample, Subsample(train: 100, validation: 50, test: 70))
        XCTAssertEqual(spec.tasks[4].source, .hdf5(file: "/abs/file.h5", x: "/x", y: "/y", testX: nil, testY: nil, testFraction: 0.2))
        XCTAssertEqual(spec.tasks[4].labels, .parity)
        XCTAssertEqual(spec.tasks[4].transforms, [.noise(std: 0.3, seed: nil)])
        XCTAssertEqual(spec.taskCount, 5)
    }

    func testDefaultBaseIsTheFilesFolder() throws {
        let spec = try DataSpec.parse(yaml: "data:\n  tasks: [{name: a, source: {idx: ../d}}]", file: "/x/y/space.yaml")
        XCTAssertEqual(spec.tasks[0].source, .idx(folder: "/x/d"))
        XCTAssertEqual(spec.baseDirectory, "/x/y")
        XCTAssertEqual(spec.normalize, .perTask)
        XCTAssertEqual(spec.validation, 0.1)
    }

    func testSyntheticSection() throws {
        let spec = try parse("data:\n  validation: 0.25\n  synthetic: {kind: multi-task, tasks: 3, classes: 3, clusters: 9, features: 16, train: 40, test: 20, noise: 1.5}\n")
        let s = try XCTUnwrap(spec.synthetic)
        XCTAssertEqual(s.kind, .multiTask)
        XCTAssertEqual([s.tasks, s.classes, s.clusters, s.features, s.train, s.test], [3, 3, 9, 16, 40, 20])
        XCTAssertEqual(s.noise, 1.5)
        let tasks = try spec.load(seed: 1)
        XCTAssertEqual(tasks.count, 3)
        XCTAssertEqual(tasks.map(\.train.count), [40, 40, 40])
        XCTAssertEqual(tasks.map(\.validation.count), [10, 10, 10])
        XCTAssertEqual(tasks.map(\.test.count), [20, 20, 20])
        XCTAssertEqual(tasks[0].shape, [16])
        let md = try parse("data: {synthetic: {kind: multi-domain}}").load(seed: 0)
        XCTAssertEqual(md.count, 4)
        XCTAssertEqual(md[0].classes, 10)
        XCTAssertEqual(md[0].train.count, 512)
    }

    /// Every error names the file, the line and the field path; unknown keys list the valid ones.
    func testErrorsNameFileLineAndField() {
        let cases: [(String, [String])] = [
            ("data:\n  tasks:\n    - name: a\n      source: {idx: /x}\n      transfrom: {rotate: 90}\n",
             ["space.yaml:5: data.tasks[0].transfrom: unknown key 'transfrom'; valid keys here: name, source, transform, labels, subsample, classes"]),
            ("data:\n  normalise: unit\n  tasks: []\n",
             ["space.yaml:2: data.normalise: unknown key", "normalize, validation, seed, tasks, synthetic"]),
            ("data:\n  normalize: zscore\n  tasks: [{name: a, source: {idx: /x}}]\n",
             ["space.yaml:2: data.normalize: unknown normalisation 'zscore'; use one of per-task, unit, none"]),
            ("data:\n  validation: 1.5\n  tasks: [{name: a, source: {idx: /x}}]\n", ["space.yaml:2: data.validation", "[0, 1)"]),
            ("data:\n  tasks:\n    - name: a\n      source: {idx: /x}\n      transform: {rotat: 90}\n",
             ["space.yaml:5: data.tasks[0].transform.rotat: unknown transform 'rotat'; known: permute, invert, rotate, flip, contrast, noise"]),
            ("data:\n  tasks:\n    - name: a\n      source: {idx: /x}\n      transform: [invert, {flip: sideways}]\n",
             ["space.yaml:5: data.tasks[0].transform[1].flip", "horizontal or vertical"]),
            ("data:\n  tasks:\n    - name: a\n      source: {idx: /x}\n      transform: {noise: {std: 0.1, sed: 2}}\n",
             ["space.yaml:5: data.tasks[0].transform.noise.sed: unknown key 'sed'; valid keys here: std, seed"]),
            ("data:\n  tasks:\n    - name: a\n      source: {idx: /x}\n      labels: {groups: [[0, 1], [1, 2]]}\n",
             ["space.yaml:5: data.tasks[0].labels.groups", "more than one group"]),
            ("data:\n  tasks:\n    - name: a\n      source: {idx: /x}\n      labels: modulo\n",
             ["space.yaml:5: data.tasks[0].labels: unknown label function 'modulo'"]),
            ("data:\n  tasks:\n    - name: a\n      source: {idx: /x}\n      subsample: -3\n",
             ["space.yaml:5: data.tasks[0].subsample: must be at least 1"]),
            ("data:\n  tasks:\n    - name: a\n      source: {url: http://x}\n",
             ["space.yaml:4: data.tasks[0].source", "{idx: FOLDER} or {hdf5: FILE"]),
            ("data:\n  tasks:\n    - name: a\n      source: {idx: /x, y: /y}\n",
             ["space.yaml:4: data.tasks[0].source.y: unknown key 'y'; valid keys here: idx"]),
            ("data:\n  tasks:\n    - name: a\n      source: {hdf5: f.h5, test_x: /tx}\n",
             ["space.yaml:4: data.tasks[0].source", "both test_x and test_y"]),
            ("data:\n  tasks:\n    - source: {idx: /x}\n", ["space.yaml:3: data.tasks[0]", "needs a 'name:'"]),
            ("data:\n  tasks:\n    - {name: a, source: {idx: /x}}\n    - {name: a, source: {idx: /y}}\n",
             ["space.yaml:4: data.tasks[1]", "'a' is used by data.tasks[0]"]),
            ("data:\n  validation: 0.1\n", ["space.yaml:2: data", "give 'tasks:'", "'synthetic:'"]),
            ("data:\n  tasks: [{name: a, source: {idx: /x}}]\n  synthetic: {kind: multi-task}\n", ["space.yaml:2: data", "not both"]),
            ("data:\n  synthetic: {kind: multi-everything}\n", ["space.yaml:2: data.synthetic.kind", "multi-domain or multi-task"]),
            ("data:\n  synthetic: {kind: multi-domain, clusters: 4}\n", ["data.synthetic.clusters", "multi-task suite"]),
            ("data:\n  synthetic: {kind: multi-task, classes: 20}\n", ["space.yaml:2: data.synthetic", "clusters (16)", "classes (20)"]),
            ("data:\n  tasks:\n    - name: a\n      source: {idx: /x}\n      classes: 1\n", ["space.yaml:5: data.tasks[0].classes: must be at least 2"]),
            ("data:\n  tasks:\n    - name: a\n      source: {idx: /x}\n      classes: 4\n      labels: {subset: [1, 6]}\n",
             ["space.yaml:6: data.tasks[0].labels", "class 6"]),
            ("study: x\n", ["space.yaml:1: data: no 'data:' section"]),
            ("data: [1, 2\n", ["space.yaml", "not valid YAML"]),
        ]
        for (yaml, fragments) in cases {
            assertDataError(fragments) { _ = try parse(yaml) }
        }
    }

    func testMissingDataIsAnErrorAtTheSourceThatSaysHowToGetIt() {
        let yaml = "data:\n  tasks:\n    - name: fashion\n      source: {idx: /nowhere/fashion-mnist}\n"
        assertDataError(["quickstart.yaml:4: data.tasks[0].source", "/nowhere/fashion-mnist", "no such folder",
                         "make setup", "apt-get install dataset-fashion-mnist"]) {
            _ = try DataSpec.parse(yaml: yaml, file: "quickstart.yaml").load(seed: 0)
        }
        assertDataError(["quickstart.yaml:4: data.tasks[0].source", "no such folder"]) {
            try DataSpec.parse(yaml: yaml, file: "quickstart.yaml").checkSources()
        }
        let h5 = "data:\n  tasks:\n    - name: h\n      source: {hdf5: /nowhere/set.h5}\n"
        assertDataError(["q.yaml:4: data.tasks[0].source", "/nowhere/set.h5", "no such file"]) {
            _ = try DataSpec.parse(yaml: h5, file: "q.yaml").load(seed: 0)
        }
    }

    func testNodeInitialiserOnTheDataValue() throws {
        let root = try XCTUnwrap(try Yams.compose(yaml: "model: {units: [linear:8]}\ndata:\n  synthetic: {kind: multi-domain, tasks: 2}\n"))
        let node = try XCTUnwrap(root["data"])
        let spec = try DataSpec(node: node, file: "study.yaml")
        XCTAssertEqual(spec.taskCount, 2)
        XCTAssertEqual(spec.location?.line, 3)
    }
}
