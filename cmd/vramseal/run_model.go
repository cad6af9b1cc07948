package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/model"
	"github.com/vramseal/vramseal/sealer"
	"github.com/vramseal/vramseal/supervisor"
)

// openModel opens what "vramseal run" was given: one model directory (its
// *.safetensors, checked against its index), model files, or nothing (the
// demo model); reads their tensor tables; and attaches the checks the
// identity flags ask for. Every error is a usage error (exit 2), or exit 4
// for a file that is not the published model.
func (w *worker) openModel(args []string) ([]*model.Source, error) {
	o := w.opts
	id, err := o.identity.load()
	if err != nil {
		return nil, err
	}
	w.identity = id
	if len(args) == 0 {
		if o.identity.given() {
			return nil, usageErrorf("--sha256sums, --expect-sha256 and --signature check model files; pass the files or their directory")
		}
		return model.Demo(), nil
	}
	dir, err := model.FindDir(args, id.Ignored)
	if err != nil {
		return nil, withExitCode(exitUsage, err)
	}
	files, modelRef := args, o.modelRef
	if dir != nil {
		files, modelRef = dir.Paths(), dir.ModelRef(o.modelRef)
	}
	// A file no list names is refused by its name, before any is opened.
	if err := id.CheckListed(files, dir, o.identity.allowUnlisted); err != nil {
		return nil, identityError(err)
	}
	srcs, err := openModelFiles(files, o.shardID, modelRef)
	if err != nil {
		return nil, err
	}
	// The identity first: a file that is not the published model (exit 4)
	// may well break the index too.
	err = id.Attach(srcs, dir, model.AttachOptions{
		AllowUnlisted: o.identity.allowUnlisted, AllowUnsigned: o.identity.allowUnsigned, Logger: w.logger,
	})
	if err == nil && dir != nil {
		err = dir.CheckIndex(srcs)
	}
	if err != nil {
		model.Close(srcs)
		return nil, identityError(err)
	}
	return srcs, nil
}

// openModelFiles checks and opens each model file: each becomes one shard,
// named after its file (or idOverride, the --id flag, with exactly one
// file). When modelRef is set the files are the model's shards, in order.
// Every problem is a usage error that names the file and the fix; on error
// nothing stays open.
func openModelFiles(paths []string, idOverride, modelRef string) ([]*model.Source, error) {
	if idOverride != "" && len(paths) != 1 {
		return nil, usageErrorf("--id names one shard, but %d model files were given; pass exactly one file with --id, or drop --id to name shards after their files", len(paths))
	}
	if err := sealer.ValidateModelRef(modelRef); err != nil {
		return nil, usageErrorf("--model-ref: %w", err)
	}
	if idOverride != "" {
		if err := sealer.ValidateShardID(idOverride); err != nil {
			return nil, usageErrorf("--id: %w", err)
		}
	}
	files := make([]model.File, len(paths))
	for i, path := range paths {
		id := idOverride
		if id == "" {
			id = model.ShardIDFromFileName(filepath.Base(path))
			if id == "" {
				return nil, usageErrorf("model file %s has no letters or digits in its name to make a shard ID from; pass --id ID", path)
			}
		}
		files[i] = model.File{Path: path, ID: id}
	}
	srcs, err := model.OpenFiles(files, modelRef)
	if errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("%w, or pass no files to seal the demo model", err)
	}
	return srcs, withExitCode(exitUsage, err)
}

// sealModel seals every source through rt (see model.SealAll), showing
// progress on p,
// and gives the error the exit code its kind asks for: 2 for a file that
// changed under its seal, as for one swapped when it was opened; 4 for a
// file that is not the published model.
func sealModel(ctx context.Context, rt *supervisor.Runtime, srcs []*model.Source, p *progress, logger *slog.Logger) ([]sealer.Shard, error) {
	shards, err := model.SealAll(ctx, rt, srcs, model.SealOptions{Track: p.track, Logger: logger})
	var changed *model.FileError
	switch {
	case errors.As(err, &changed):
		return shards, withExitCode(exitUsage, err)
	case errors.Is(err, messages.ErrModelRejected):
		return shards, withExitCode(exitModelRejected, err)
	}
	return shards, err
}
